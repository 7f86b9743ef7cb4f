"""The HTML report's data: what each chart draws, computed from the report and the records.

Pure functions, no I/O. The page (`html.py`, `assets/report.js`) only draws what is here, so
its size stays the same for 100 or 100 000 calls: distributions are cut to `ECDF_POINTS`
quantiles, percentiles over time to one point per minute, hour or day, and only the
`SLOWEST` calls of each number are shown turn by turn.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

import numpy as np

from voiceagent.report.details import CallDetail, Details, TurnDetail
from voiceagent.report.outbound import outbound_section
from voiceagent.report.stats import Report, metric_values

DISTRIBUTIONS = ("response_ms", "greeting_ms", "heard_ms", "fetch_ms")
ECDF_POINTS = 300
SLOWEST = 5
MIN_TIME_POINTS = 3  # the over-time chart is drawn from this many buckets with turns on
Texts = Mapping[tuple[str, int], tuple[str | None, str | None]]
_BUCKETS = ((3 * 3600, 60, "minute"), (3 * 86400, 3600, "hour"), (None, 86400, "day"))


def ecdf(values: Sequence[float]) -> list[tuple[float, float]]:
    """The empirical CDF as (ms, fraction ≤ ms) steps, from (min, 0); at most ECDF_POINTS + 1."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    n = len(ordered)
    if n == 0:
        return []
    if n <= ECDF_POINTS:
        xs, ys = ordered, np.arange(1, n + 1) / n
    else:
        ys = np.linspace(1 / ECDF_POINTS, 1.0, ECDF_POINTS)
        xs = np.quantile(ordered, ys, method="inverted_cdf")
    return [(round(float(ordered[0]), 1), 0.0)] + [
        (round(float(x), 1), round(float(y), 4)) for x, y in zip(xs, ys, strict=True)
    ]


def bucket_size(times: Iterable[datetime]) -> tuple[int, str]:
    """Seconds per point of the over-time chart: minutes for a rehearsal, hours for a few
    days, days beyond."""
    stamps = [t.timestamp() for t in times]
    span = max(stamps) - min(stamps) if stamps else 0.0
    return next((size, name) for limit, size, name in _BUCKETS if limit is None or span <= limit)


def over_time(turns: Sequence[TurnDetail], size: int) -> dict[str, list[float | None]]:
    """`response` p50 and p99 (and n) of agent turns per `size`-second bucket."""
    buckets: dict[int, list[float]] = defaultdict(list)
    for t in turns:
        value = t.row.figures.get("response_ms")
        if t.row.kind == "turn" and value is not None:
            buckets[int(t.at.timestamp()) // size * size].append(float(value))
    out: dict[str, list[float | None]] = {"t": [], "p50": [], "p99": [], "n": []}
    for start in sorted(buckets):
        p50, p99 = np.percentile(buckets[start], [50, 99])
        out["t"].append(start * 1000.0)
        out["p50"].append(round(float(p50), 1))
        out["p99"].append(round(float(p99), 1))
        out["n"].append(float(len(buckets[start])))
    return out


def outcomes(members: Sequence[CallDetail], turns: Sequence[TurnDetail]) -> dict[str, int]:
    """Counts per arm: calls, failovers, upstream failures by kind, upstream error events,
    failed turns, barge-ins, and how calls ended (`ended: …`)."""
    counts: Counter[str] = Counter(calls=len(members))
    for c in members:
        counts["failovers"] += 1 if c.row.failover_from else 0
        counts["upstream errors"] += c.upstream_errors
        counts["barge-ins"] += c.barge_ins
        if c.upstream_failure:
            counts[f"upstream failure: {c.upstream_failure}"] += 1
        counts[f"ended: {c.row.end_reason or 'in progress'}"] += 1
    counts["failed turns"] = sum(1 for t in turns if t.failed)
    # tool calls join here once the records carry them (issue 10)
    return dict(counts)


def slowest(details: Details, number: str, limit: int = SLOWEST) -> list[str]:
    """The CallSids of `number`'s calls with the slowest response (greeting or turn)."""
    mine = {c.row.call_sid for c in details.calls if c.row.number == number}
    worst: dict[str, float] = {}
    for t in details.turns:
        value = t.row.figures.get("response_ms")
        if t.row.call_sid in mine and value is not None:
            worst[t.row.call_sid] = max(worst.get(t.row.call_sid, 0.0), float(value))
    return sorted(worst, key=lambda sid: -worst[sid])[:limit]


def slowest_everywhere(details: Details) -> list[str]:
    """The CallSids `page_data` shows turn by turn, for `load_texts`."""
    return [sid for n in dict.fromkeys(c.row.number for c in details.calls)
            for sid in slowest(details, n)]  # fmt: skip


def _timeline(call: CallDetail, turns: Sequence[TurnDetail], texts: Texts) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for t in sorted(turns, key=lambda t: t.index):
        f = t.row.figures
        user, agent = texts.get((call.row.call_sid, t.index), (None, None))
        rows.append({
            "index": t.index, "kind": t.row.kind, "mode": t.row.mode,
            "at": t.at.isoformat(timespec="seconds"), "response_ms": f.get("response_ms"),
            "upstream_ttfb_ms": f.get("upstream_ttfb_ms"), "overhead_ms": f.get("overhead_ms"),
            "heard_ms": f.get("heard_ms"), "fetch_ms": f.get("fetch_ms"),
            "barge_in_ms": f.get("barge_in_ms"), "interrupted": t.interrupted,
            "failed": t.failed, "user_text": user, "agent_text": agent,
        })  # fmt: skip
    worst = max((r["response_ms"] or 0.0 for r in rows), default=0.0)
    started = call.row.started_at.isoformat(timespec="seconds") if call.row.started_at else None
    return {"call_sid": call.row.call_sid, "arm": call.row.arm or call.row.mode,
            "mode": call.row.mode, "failover_from": call.row.failover_from,
            "end_reason": call.row.end_reason, "started_at": started, "worst_ms": worst,
            "turns": rows}  # fmt: skip


def _number(
    number: str,
    report: Report,
    by_arm: Mapping[str, tuple[list[CallDetail], list[TurnDetail]]],
    settings: Mapping[str, list[str]],
    size: int,
) -> dict[str, Any]:
    """One number's section, all but its slowest calls."""
    arms = [a for a in report.arms if a.number == number]
    ecdfs: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for metric in DISTRIBUTIONS:
        lines = {a.arm: ecdf(metric_values([t.row for t in by_arm[a.arm][1]], metric)[0])
                 for a in arms}  # fmt: skip
        if any(lines.values()):
            ecdfs[metric] = {arm: line for arm, line in lines.items() if line}
    return {
        "number": number,
        "arms": [{**asdict(a), "settings": settings.get(a.arm, [])} for a in arms],
        "comparisons": [asdict(c) for c in report.comparisons if c.number == number],
        "sample_ratio": next((asdict(r) for r in report.ratios if r.number == number), None),
        "guardrail_diffs": [asdict(d) for d in report.guardrail_diffs if d.number == number],
        "ecdf": ecdfs,
        "over_time": {a.arm: over_time(by_arm[a.arm][1], size) for a in arms},
        "outcomes": {a.arm: outcomes(*by_arm[a.arm]) for a in arms},
        "outbound": outbound_section(report.outbound, number),
    }


def page_data(
    report: Report,
    details: Details,
    *,
    settings: Mapping[str, Mapping[str, list[str]]] | None = None,
    texts: Texts | None = None,
    generated_at: datetime,
    source: str = "",
) -> dict[str, Any]:
    """Everything the page draws, JSON-ready; numbers with an experiment first. `settings`:
    per number, per arm, what the arm changes (`arms.arm_settings`); `texts`: transcripts of
    the slowest calls (`load_texts`)."""
    grouped: dict[tuple[str, str], tuple[list[CallDetail], list[TurnDetail]]] = defaultdict(
        lambda: ([], [])
    )
    calls = {c.row.call_sid: c for c in details.calls}
    turns_of: dict[str, list[TurnDetail]] = defaultdict(list)
    for c in details.calls:
        grouped[(c.row.number, c.row.arm or c.row.mode)][0].append(c)
    for t in details.turns:
        if (call := calls.get(t.row.call_sid)) is not None:
            grouped[(call.row.number, call.row.arm or call.row.mode)][1].append(t)
            turns_of[t.row.call_sid].append(t)
    size, bucket = bucket_size(t.at for t in details.turns)
    numbers = []
    compared = {c.number for c in report.comparisons}
    dialled = {o.number for o in report.outbound}
    for number in sorted({a.number for a in report.arms} | dialled,
                         key=lambda n: (n not in compared, n)):  # fmt: skip
        by_arm = {arm: grouped[(n, arm)] for (n, arm) in grouped if n == number}
        section = _number(number, report, by_arm, (settings or {}).get(number, {}), size)
        section["slowest"] = [_timeline(calls[sid], turns_of[sid], texts or {})
                              for sid in slowest(details, number)]  # fmt: skip
        numbers.append(section)
    return {
        "generated_at": generated_at.isoformat(timespec="seconds"),
        "since": report.since.isoformat(timespec="minutes") if report.since else None,
        "source": source,
        "calls": report.calls,
        "turns": report.turns,
        "dialled": sum(o.dialled for o in report.outbound),
        "bucket": bucket,
        "bucket_s": size,
        "stats": report.settings,
        "method": report.method,
        "min_time_points": MIN_TIME_POINTS,
        "numbers": numbers,
    }
