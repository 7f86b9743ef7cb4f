// voiceagent report: draws the data embedded in #report-data with Chart.js (vendored, inlined).
// Every chart is listed in window.voiceagentReport.charts (id, title, points) for the tests.
// Text from the records is set with textContent only, never parsed as HTML.
"use strict";
(function () {
  const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b"];
  const LABELS = {
    response_ms: "response (turn end → first agent audio)",
    greeting_ms: "greeting (call answered → first agent audio)",
    heard_ms: "heard (turn end → caller heard first audio; realtime)",
    fetch_ms: "fetch (turn end → Twilio fetched first clip; relay)",
  };
  const state = (window.voiceagentReport = { charts: [], ready: false, error: null, renderedMs: 0 });
  const charts = [];
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = "system-ui, sans-serif";

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const ms = (v) => (v === null || v === undefined ? "–" : `${Math.round(v)}`);
  const short = (metric) => metric.replace(/_ms$/, "");

  function chart(parent, title, config, height) {
    const canvas = el("canvas");
    const box = el("figure", { class: "chart" }, el("figcaption", {}, title),
      el("div", { class: "plot", style: `height:${height || 260}px` }, canvas));
    parent.append(box);
    const made = new Chart(canvas, config);
    charts.push(made);
    const points = config.data.datasets.reduce((sum, d) => sum + d.data.length, 0);
    state.charts.push({ id: `chart-${state.charts.length}`, title, points });
    canvas.id = `chart-${state.charts.length - 1}`;
    return made;
  }

  function ecdfChart(parent, metric, lines, arms) {
    const datasets = Object.entries(lines).map(([arm, points]) => ({
      label: arm, data: points.map(([x, y]) => ({ x, y })), stepped: true,
      borderColor: color(arms, arm), backgroundColor: color(arms, arm),
      pointRadius: 0, borderWidth: 2,
    }));
    chart(parent, `${LABELS[metric] || metric}: share of turns answered within`, {
      type: "line", data: { datasets },
      options: {
        parsing: false, normalized: true,
        scales: {
          x: { type: "linear", min: 0, title: { display: true, text: "ms (axis starts at 0)" } },
          y: { min: 0, max: 1, ticks: { callback: (v) => `${Math.round(v * 100)}%` } },
        },
        plugins: { tooltip: { callbacks: {
          label: (c) => `${c.dataset.label}: ${Math.round(c.parsed.y * 100)}% ≤ ${ms(c.parsed.x)} ms`,
        } } },
      },
    });
  }

  function color(arms, arm) {
    return COLORS[Math.max(0, arms.indexOf(arm)) % COLORS.length];
  }

  function intervalChart(parent, comparisons) {
    const shown = comparisons.filter((c) => c.ci_low !== null && c.ci_high !== null);
    if (!shown.length) return;
    const labels = shown.map((c) => `${short(c.metric)}: ${c.arm_b} − ${c.arm_a}`);
    const lows = shown.map((c) => c.ci_low), highs = shown.map((c) => c.ci_high);
    chart(parent, "A/B: difference of per-call means (ms) with its always-valid interval (95% for " +
      "the experiment, shared by the latencies compared); " +
      "left of 0: the second arm is faster", {
      type: "bar",
      data: { labels, datasets: [
        { label: "95% interval", data: shown.map((c) => [c.ci_low, c.ci_high]),
          backgroundColor: shown.map((c) => (c.winner ? "#1f77b480" : "#aaaaaa80")),
          barPercentage: 0.45 },
        { type: "line", label: "observed difference", showLine: false, pointRadius: 7,
          pointStyle: "rectRot", backgroundColor: "#222", borderColor: "#222",
          data: shown.map((c, i) => ({ x: c.diff_ms, y: labels[i] })) },
      ] },
      options: {
        indexAxis: "y",
        scales: { x: {
          suggestedMin: Math.min(0, ...lows), suggestedMax: Math.max(0, ...highs),
          title: { display: true, text: "ms" },
          grid: { color: (c) => (c.tick && c.tick.value === 0 ? "#222" : "#0000001a"),
                  lineWidth: (c) => (c.tick && c.tick.value === 0 ? 2 : 1) },
        } },
      },
    }, 70 + 46 * shown.length);
  }

  function timeLabel(bucket) {
    return (v) => {
      const iso = new Date(v).toISOString();
      if (bucket === "day") return iso.slice(0, 10);
      if (bucket === "hour") return `${iso.slice(5, 10)} ${iso.slice(11, 13)}h`;
      return iso.slice(11, 16);
    };
  }

  function overTimeChart(parent, series, arms, bucket, step, minPoints) {
    const most = Math.max(0, ...Object.values(series).map((s) => s.t.length));
    if (most < minPoints) {
      parent.append(el("p", { class: "note" }, `response p50 and p99 per ${bucket}: drawn once ` +
        `there are ${minPoints} ${bucket}s with turns (${most} so far)`));
      return;
    }
    const datasets = [];
    for (const [arm, s] of Object.entries(series)) {
      if (!s.t.length) continue;
      for (const [key, dash] of [["p50", []], ["p99", [6, 4]]]) {
        datasets.push({ label: `${arm} ${key}`, data: s.t.map((t, i) => ({ x: t, y: s[key][i] })),
          borderColor: color(arms, arm), backgroundColor: color(arms, arm), borderDash: dash,
          pointRadius: 3, borderWidth: 2 });
      }
    }
    if (!datasets.length) return;
    const times = datasets.flatMap((d) => d.data.map((p) => p.x));
    chart(parent, `response p50 and p99 per ${bucket} (UTC)`, {
      type: "line", data: { datasets },
      options: { parsing: false, scales: {
        x: { type: "linear", min: Math.min(...times) - step * 500, max: Math.max(...times) + step * 500,
             ticks: { callback: timeLabel(bucket), maxRotation: 0, stepSize: step * 1000 } },
        y: { beginAtZero: true, title: { display: true, text: "ms" } },
      }, plugins: { tooltip: { callbacks: { title: (items) => timeLabel(bucket)(items[0].parsed.x) } } } },
    });
  }

  function countsChart(parent, title, outcomes, arms, keep, stacked) {
    const kinds = [...new Set(arms.flatMap((a) => Object.keys(outcomes[a] || {})))].filter(keep);
    if (!kinds.length) return;
    const datasets = kinds.map((kind, i) => ({
      label: kind, data: arms.map((a) => (outcomes[a] || {})[kind] || 0),
      backgroundColor: COLORS[i % COLORS.length],
    }));
    chart(parent, title, { type: "bar", data: { labels: arms, datasets },
      options: { scales: { x: { stacked }, y: { stacked, beginAtZero: true, ticks: { precision: 0 } } } } });
  }

  function timelineChart(parent, call) {
    const labels = call.turns.map((t) => [`${t.kind} ${t.index}`,
      t.interrupted ? `barge-in ${ms(t.barge_in_ms)} ms` : null,
      t.failed ? `failed: ${t.failed}` : null].filter(Boolean).join(" · "));
    const split = (t) => t.upstream_ttfb_ms !== null && t.overhead_ms !== null;
    const datasets = [
      { label: "upstream first byte", backgroundColor: "#1f77b4",
        data: call.turns.map((t) => (split(t) ? t.upstream_ttfb_ms : null)) },
      { label: "voiceagent overhead", backgroundColor: "#ff7f0e",
        data: call.turns.map((t) => (split(t) ? t.overhead_ms : null)) },
      { label: "response (not split)", backgroundColor: "#7f7f7f",
        data: call.turns.map((t) => (split(t) ? null : t.response_ms)) },
    ].filter((d) => d.data.some((v) => v !== null));
    datasets.forEach((d) => { d.data = d.data.map((v) => (v === null ? 0 : v)); });
    if (!datasets.length) return;
    chart(parent, `turns of ${call.call_sid}: response split into upstream and voiceagent (ms)`, {
      type: "bar", data: { labels, datasets },
      options: { indexAxis: "y", scales: { x: { stacked: true, beginAtZero: true }, y: { stacked: true } } },
    }, 60 + 26 * call.turns.length);
  }

  function transcript(call) {
    const lines = [];
    for (const t of call.turns) {
      if (t.user_text) lines.push(el("li", { class: "caller" }, `caller: ${t.user_text}`));
      if (t.agent_text) lines.push(el("li", { class: "agent" }, `agent: ${t.agent_text}`));
    }
    if (!lines.length) return null;
    return el("details", {}, el("summary", {}, `transcript (${lines.length} lines)`),
      el("ol", { class: "transcript" }, ...lines));
  }

  function armTable(number) {
    const head = el("tr", {}, ...["arm", "mode", "calls", "turns", "failovers", "response p50",
      "p90", "p99", "greeting p50", "what the arm changes"].map((h) => el("th", {}, h)));
    const rows = number.arms.map((a) => {
      const r = a.latency.response_ms, g = a.latency.greeting_ms;
      return el("tr", {}, el("td", {}, a.arm), el("td", {}, a.mode), el("td", {}, a.calls),
        el("td", {}, a.turns), el("td", {}, a.failovers), el("td", {}, ms(r.p50)),
        el("td", {}, ms(r.p90)), el("td", {}, ms(r.p99)), el("td", {}, ms(g.p50)),
        el("td", { class: "settings" }, a.settings.join("; ") || "–"));
    });
    return el("table", { class: "arms" }, el("thead", {}, head), el("tbody", {}, ...rows));
  }

  const pct = (v) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`);
  const guardValue = (name, v) => (name.startsWith("duration") ? (v === null ? "–" : v.toFixed(1)) : pct(v));

  function guardrailTable(number) {
    const names = [...new Set(number.arms.flatMap((a) => (a.guardrails || []).filter((g) => g.calls)
      .map((g) => g.name)))];
    if (!names.length) return null;
    const head = el("tr", {}, el("th", {}, "guardrail (per call, always-valid 95%)"),
      ...number.arms.map((a) => el("th", {}, a.arm)));
    const rows = names.map((name) => el("tr", {}, el("td", {}, name), ...number.arms.map((a) => {
      const g = (a.guardrails || []).find((x) => x.name === name);
      const worse = (number.guardrail_diffs || []).some((d) => d.name === name && d.worse === a.arm);
      return el("td", { class: worse ? "worse" : "" }, !g || !g.calls ? "–" :
        `${guardValue(name, g.mean)} [${guardValue(name, g.low)}, ${guardValue(name, g.high)}]` +
        (worse ? " worse" : ""));
    })));
    return el("table", { class: "arms guardrails" }, el("thead", {}, head), el("tbody", {}, ...rows));
  }

  const share = (n, of) => (of ? ` (${pct(n / of)})` : "");

  function outboundTable(number) {
    const out = number.outbound;
    if (!out || !out.arms.length) return null;
    const head = el("tr", {}, ...["arm", "dialled", ...out.statuses, ...out.answered_by.map((v) =>
      `answered by ${v}`), "no verdict", "reached voicemail", "reached a person"].map((h) => el("th", {}, h)));
    const rows = out.arms.map((a) => {
      const count = (n) => el("td", {}, `${n}${share(n, a.dialled)}`);
      return el("tr", {}, el("td", {}, a.arm), el("td", {}, a.dialled),
        ...out.statuses.map((k) => count(a.statuses[k] || 0)),
        ...out.answered_by.map((k) => count(a.answered_by[k] || 0)), count(a.no_verdict),
        el("td", {}, pct(a.rates.voicemail)), el("td", {}, pct(a.rates.person)));
    });
    return el("div", { class: "outbound" }, el("h3", {}, "outbound calls"),
      el("p", { class: "note" }, "per arm: calls dialled by final status and by AMD verdict " +
        "(answered_by), each with its share of the calls dialled; voicemail: any machine verdict"),
      el("table", { class: "arms outbound" }, el("thead", {}, head), el("tbody", {}, ...rows)));
  }

  function numberSection(number, bucket, step, data) {
    const arms = number.arms.map((a) => a.arm);
    const verdicts = number.comparisons.map((c) =>
      el("li", { class: c.winner ? "winner" : "open" }, `${short(c.metric)}: ${c.verdict}`));
    const ratio = number.sample_ratio;
    const grid = el("div", { class: "grid" });
    const section = el("section", { class: "number" }, el("h2", {}, number.number),
      ratio ? el("p", { class: ratio.mismatch ? "mismatch" : "ratio" }, ratio.note) : null,
      number.arms.length ? armTable(number) : null, guardrailTable(number), outboundTable(number),
      verdicts.length ? el("ul", { class: "verdicts" }, ...verdicts) : null,
      verdicts.length ? el("p", { class: "method" }, `verdicts: ${data.method}`) : null, grid);
    document.getElementById("numbers").append(section);
    intervalChart(grid, number.comparisons);
    for (const [metric, lines] of Object.entries(number.ecdf)) ecdfChart(grid, metric, lines, arms);
    if (arms.length) overTimeChart(grid, number.over_time, arms, bucket, step, data.min_time_points || 3);
    countsChart(grid, "calls, failovers, upstream errors by kind", number.outcomes, arms,
      (k) => !k.startsWith("ended: "), false);
    countsChart(grid, "how calls ended", number.outcomes, arms, (k) => k.startsWith("ended: "), true);
    if (!number.slowest.length) return;
    const slow = el("div", { class: "slowest" });
    section.append(el("h3", {}, "slowest calls"), slow);
    for (const call of number.slowest) {
      const sid = state.callLink  // the dashboard links each call to its whole story
        ? el("a", { href: state.callLink + encodeURIComponent(call.call_sid) }, call.call_sid)
        : call.call_sid;
      const box = el("div", { class: "call" }, el("p", {}, sid, ` · arm ${call.arm} · ` +
        `${call.started_at || ""} · slowest response ${ms(call.worst_ms)} ms` +
        (call.failover_from ? ` · failed over from ${call.failover_from}` : "") +
        ` · ended: ${call.end_reason || "in progress"}`));
      slow.append(box);
      timelineChart(box, call);
      const text = transcript(call);
      if (text) box.append(text);
    }
  }

  function renderExperiments(data) {
    const box = document.getElementById("experiments");
    const list = data.experiments || [];
    box.hidden = !list.length;
    if (!list.length) return;
    const items = list.map((x) => el("div", { class: `experiment state-${x.state.replace(/ /g, "-")}` },
      el("h3", {}, `${x.number} · ${x.name}: `, el("span", { class: "state" }, x.state), ` · ${x.headline}`),
      x.sample_ratio ? el("p", { class: x.state === "mismatch" ? "mismatch" : "ratio" }, x.sample_ratio) : null,
      el("ul", {}, ...x.arms.map((a) => el("li", {}, `arm ${a.name} (weight ${a.weight}, ${a.calls} calls): ` +
        (a.changes.join("; ") || `mode: ${a.mode}`)))),
      el("ul", { class: "verdicts" }, ...x.verdicts.map((v) => el("li", {}, v))),
      x.calls_needed !== null ? el("p", {}, `calls needed: about ${x.calls_needed} more per arm`) : null));
    box.replaceChildren(el("h2", {}, "experiments"), ...items, el("p", { class: "method" }, `verdicts: ${data.method}`));
  }

  function renderLive(live) {
    const box = document.getElementById("live");
    if (!live) return;
    box.hidden = false;
    const modes = Object.entries(live.active_calls).map(([m, n]) => el("li", {}, `${m}: `, el("b", {}, n)));
    const rt = live.realtime_sessions;
    box.replaceChildren(el("h2", {}, "live"),
      el("ul", { class: "live" }, el("li", {}, "active calls: ", el("b", {}, live.active_total)), ...modes,
        el("li", {}, "Realtime sessions in use: ", el("b", {}, rt.in_use + (rt.limit ? ` / ${rt.limit}` : "")),
          ` (${rt.source})`),
        el("li", {}, live.draining ? "draining" : "serving"),
        el("li", {}, `config version ${live.config_version}`),
        el("li", {}, `updated ${live.at}`)));
  }

  function render(data) {
    charts.splice(0).forEach((c) => c.destroy());
    state.charts = [];
    state.callLink = data.call_link || null;
    const since = data.since ? `since ${data.since}` : "all records";
    document.getElementById("summary").textContent = `${data.calls} calls, ${data.turns} turns, ` +
      (data.dialled ? `${data.dialled} outbound calls dialled, ` : "") +
      `${since}; generated ${data.generated_at}` + (data.source ? ` from ${data.source}` : "");
    const banner = document.getElementById("banner");
    banner.hidden = !data.simulated;
    banner.textContent = data.simulated ? "SIMULATED: these records come from `voiceagent simulate` " +
      "(fake Inworld, simulated Twilio callers), not from real calls" : "";
    renderExperiments(data);
    const numbers = document.getElementById("numbers");
    numbers.replaceChildren();
    if (!data.numbers.length) numbers.append(el("p", {}, "no calls recorded yet"));
    for (const number of data.numbers) numberSection(number, data.bucket, data.bucket_s, data);
    renderLive(data.live);
  }

  function refresh(data) {
    if (!data.refresh) return;
    let shown = `${data.calls}/${data.turns}/${data.generated_at}`;
    setInterval(async () => {
      try {
        const answer = await fetch(data.refresh.url, { credentials: "same-origin", cache: "no-store" });
        if (answer.status === 401) {
          document.getElementById("status").textContent = "signed out: reload to sign in again";
          return;
        }
        const next = await answer.json();
        const key = `${next.calls}/${next.turns}/${next.generated_at}`;
        if (key !== shown) { render(next); shown = key; } else renderLive(next.live);
        document.getElementById("status").textContent = "";
      } catch (err) {
        document.getElementById("status").textContent = `refresh failed: ${err}`;
      }
    }, data.refresh.every_s * 1000);
  }

  try {
    const data = JSON.parse(document.getElementById("report-data").textContent);
    render(data);
    refresh(data);
    state.ready = true;
    state.renderedMs = performance.now(); // since navigation start: parse, scripts, charts
  } catch (err) {
    state.error = String(err && err.stack ? err.stack : err);
    console.error(err);
  }
})();
