"""relay-router latency: how much voiceagent adds between the caller's prompt and the caller's ear.

Three processes on this machine: the voiceagent server (`voiceagent serve`), the fake Inworld
Router (`python -m voiceagent.sim.fake_router`, with realistic delays) and this script, which
places simulated ConversationRelay calls (`relay_caller.place_call`). Monotonic clocks are shared by
processes on Linux, so the fake's own timeline is subtracted from what the caller saw:

- overhead = (prompt → first `play` received) - (Router request received → first audio sent):
  everything voiceagent adds, including the two local network hops;
- fetch lag = first clip fully fetched - the moment the stream showed the first segment
  complete (the next transcript or the end): what the held-open fetch costs.

Targets: overhead p99 < 5 ms; fetch lag p99 < 5 ms. Also the server's CPU-seconds per
call-minute and peak RSS.

Then `relay.first_clip_ms` side by side in the same run: callers to a number with
`first_clip_ms: 300` and to one without (off) at the same time, measuring prompt → first
audio audible (the simulated Twilio starts playing a clip once it has fetched it whole) and the
silences between consecutive clips of a reply in its playback model. Goal: at least 100 ms
earlier at p50, no gap over 20 ms.

Run: `.venv/bin/python benchmarks/relay_latency.py` (`--first-clip-only` for the last part).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from _proc import cpu_seconds, start_fake_router, status_kb, wait_healthy

from voiceagent.sim.relay_caller import place_call
from voiceagent.sim.relay_playback import RelayCallRecord
from voiceagent.sim.script import Listen, Say, Step
from voiceagent.sim.webhooks import SimTarget

PUBLIC = "https://bench.voiceagent.test"
TOKEN = "bench-token"
KEY = "bench-key"
NUMBER = "+18005550102"
FIRST_CLIP = "+18005550109"  # relay with first_clip_ms: 300
CONFIG = f"""
defaults:
  agent: {{instructions: "Be brief.", greeting: "Hello! How can I help?"}}
numbers:
  "{NUMBER}": {{mode: relay-router}}
  "{FIRST_CLIP}": {{mode: relay-router, relay: {{first_clip_ms: 300}}}}
"""


def records_url(workdir: Path) -> str:
    """Records in a SQLite file of the run, or BENCH_DATABASE_URL ("" turns records off)."""
    return os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{workdir / 'records.sqlite3'}")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(router_url: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    config = workdir / "voiceagent.yaml"
    config.write_text(CONFIG)
    env = {
        **os.environ, "PUBLIC_URL": PUBLIC, "TWILIO_AUTH_TOKEN": TOKEN, "INWORLD_API_KEY": KEY,
        "INWORLD_ROUTER_URL": router_url, "VOICEAGENT_CONFIG": str(config),
        "LOG_LEVEL": "warning", "DATABASE_URL": records_url(workdir),
        "REDIS_URL": "",
    }  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "voiceagent", "serve", "--port", str(port)], env=env, cwd=workdir
    )


async def _calls(
    base: str, n_calls: int, turns: int, tag: str, number: str = NUMBER
) -> list[RelayCallRecord]:
    async def one(i: int) -> RelayCallRecord:
        await asyncio.sleep(i * 0.02)  # callers do not all dial in the same millisecond
        script: list[Step] = [Listen()]
        for t in range(turns):
            script += [Say(f"{tag} call {i} question {t}?"), Listen()]
        return await place_call(
            SimTarget(base, PUBLIC, TOKEN), number, script, speed=1.0, quiet_s=0.2, http=http
        )

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        return list(await asyncio.gather(*(one(i) for i in range(n_calls))))


def _figures(
    records: list[RelayCallRecord], router_rows: list[dict[str, Any]]
) -> dict[str, list[float]]:
    by_prompt = {row["messages"][-1]["content"]: row for row in router_rows if row["messages"]}
    out: dict[str, list[float]] = {"play": [], "fetched": [], "overhead": [], "fetch_lag": []}
    for record in records:
        for turn in record.turns[1:]:
            row = by_prompt.get(turn.prompt or "")
            if row is None or turn.first_play_at is None or turn.first_clip_fetched_at is None:
                continue
            play_ms = (turn.first_play_at - turn.sent_at) * 1000
            router_ms = (row["first_audio"] - row["received"]) * 1000
            out["play"].append(play_ms)
            out["fetched"].append((turn.first_clip_fetched_at - turn.sent_at) * 1000)
            out["overhead"].append(play_ms - router_ms)
            lag = turn.first_clip_fetched_at - row["first_segment_shown_complete"]
            out["fetch_lag"].append(lag * 1000)
    return out


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _report(name: str, figures: dict[str, list[float]]) -> None:
    print(f"\n{name}: {len(figures['play'])} turns")
    labels = {
        "play": "prompt -> first play", "fetched": "prompt -> first clip fetched",
        "overhead": "our overhead (play - router first audio)",
        "fetch_lag": "fetch lag (fetched - segment complete)",
    }  # fmt: skip
    for key, label in labels.items():
        values = figures[key]
        print(f"  {label:44s} p50 {_pct(values, 50):8.2f} ms   p99 {_pct(values, 99):8.2f} ms"
              f"   max {max(values, default=float('nan')):8.2f} ms")  # fmt: skip


def _server_figures(db: Path) -> None:
    """The server's own per-turn figures (TurnTiming, from its turn records)."""
    if not db.exists():
        return
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT response_ms, upstream_ttfb_ms, overhead_ms, fetch_ms FROM turns"
            " WHERE kind = 'turn' AND overhead_ms IS NOT NULL"
        ).fetchall()
    if not rows:
        return
    overhead = [r[2] for r in rows]
    lag = [r[3] - r[0] for r in rows if r[3] is not None]
    print(f"\nserver's own records ({len(rows)} turns, all phases):")
    print(f"  first SSE audio -> play sent (in-process)   p50 {_pct(overhead, 50):8.3f} ms"
          f"   p99 {_pct(overhead, 99):8.3f} ms")  # fmt: skip
    print(f"  play sent -> first clip fetched             p50 {_pct(lag, 50):8.1f} ms"
          f"   p99 {_pct(lag, 99):8.1f} ms")  # fmt: skip


async def first_clip(base: str, calls: int, turns: int) -> bool:
    """Calls to the number with `first_clip_ms: 300` and to the one without, at once."""
    off, on = await asyncio.gather(_calls(base, calls, turns, "off", NUMBER),
                                   _calls(base, calls, turns, "on", FIRST_CLIP))  # fmt: skip
    print(f"\nfirst_clip_ms, side by side: {calls} calls each, {turns} turns each, at once")
    p50 = {}
    for name, records in (("off", off), ("300", on)):
        turns_ = [t for r in records for t in r.turns[1:] if t.prompt_to_heard_ms is not None]
        heard = [t.prompt_to_heard_ms for t in turns_ if t.prompt_to_heard_ms is not None]
        gaps = [g for t in turns_ for g in t.clip_gaps_ms()]
        clips = sum(len(t.clips) for t in turns_) / max(len(turns_), 1)
        p50[name] = _pct(heard, 50)
        print(f"  first_clip_ms {name:>3}: prompt -> first audio audible p50 {_pct(heard, 50):7.1f}"
              f" ms  p99 {_pct(heard, 99):7.1f} ms  ({len(heard)} turns, {clips:.1f} clips a "
              f"reply); gap between clips p99 {_pct(gaps, 99):5.1f} ms  max "
              f"{max(gaps, default=0.0):5.1f} ms ({len(gaps)} gaps)")  # fmt: skip
        if name == "300":
            worst = max(gaps, default=0.0)
    earlier = p50["off"] - p50["300"]
    ok = earlier >= 100 and worst <= 20
    print(f"  300 is {earlier:.0f} ms earlier at p50; goal (>= 100 ms earlier, no gap over "
          f"20 ms): {'MET' if ok else 'MISSED'}")  # fmt: skip
    return ok


async def _router_rows(router_url: str) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(router_url.replace("/v1/chat/completions", "/_records")) as resp,
    ):
        rows: list[dict[str, Any]] = await resp.json()
        return rows


async def run(args: argparse.Namespace) -> dict[str, Any]:
    router, router_url = start_fake_router(KEY, args.ttfb, args.sentence)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        server = _start_server(router_url, port, Path(tmp))
        try:
            await wait_healthy(base)
            if args.first_clip_only:
                await first_clip(base, args.first_clip_calls, args.concurrent_turns)
                return {}
            seq = await _calls(base, 1, args.turns, "seq")
            _report("sequential (1 call)", _figures(seq, await _router_rows(router_url)))
            cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
            load0 = cpu_seconds(router.pid), time.process_time()
            conc = await _calls(base, args.calls, args.concurrent_turns, "conc")
            wall = time.monotonic() - t0
            cpu = cpu_seconds(server.pid) - cpu0
            router_cpu = cpu_seconds(router.pid) - load0[0]
            callers_cpu = time.process_time() - load0[1]
            figures = _figures(conc, await _router_rows(router_url))
            _report(f"{args.calls} concurrent calls", figures)
            call_minutes = args.calls * wall / 60
            rss = status_kb(server.pid, "VmHWM") / 1024
            print(f"\n  server CPU: {cpu:.2f} s over {wall:.1f} s wall, {args.calls} calls "
                  f"-> {cpu / call_minutes:.3f} CPU-s per call-minute")  # fmt: skip
            print(f"  server peak RSS: {rss:.1f} MB")
            print(f"  (same machine, {os.cpu_count()} cores: fake Router {router_cpu:.2f} CPU-s, "
                  f"simulated callers {callers_cpu:.2f} CPU-s)")  # fmt: skip
            ok = _pct(figures["overhead"], 99) < 5 and _pct(figures["fetch_lag"], 99) < 5
            verdict = "MET" if ok else "MISSED"
            print(f"\n  targets (overhead p99 < 5 ms, fetch lag p99 < 5 ms): {verdict}")
            await first_clip(base, args.first_clip_calls, args.concurrent_turns)
            return {"figures": figures, "cpu_per_call_minute": cpu / call_minutes, "rss_mb": rss}
        finally:
            server.terminate()
            server.wait(30)
            router.terminate()
            router.wait(10)
            _server_figures(Path(tmp) / "records.sqlite3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--turns", type=int, default=30, help="turns of the sequential call")
    parser.add_argument("--concurrent-turns", type=int, default=4)
    parser.add_argument("--ttfb", type=float, default=0.25, help="fake Router s to first byte")
    parser.add_argument("--sentence", type=float, default=0.4, help="fake s per sentence")
    parser.add_argument("--first-clip-calls", type=int, default=20,
                        help="calls per side of the first_clip_ms comparison")  # fmt: skip
    parser.add_argument("--first-clip-only", action="store_true",
                        help="only the first_clip_ms comparison")  # fmt: skip
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
