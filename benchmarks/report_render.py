"""The HTML report of a large records database, rendered in headless Chromium (target < 2 s).

Writes `--calls` synthetic calls (default 10 000, `--turns` turns each, spread over a week, on
three numbers, one of them an A/B experiment, with barge-ins, failovers and upstream failures)
through the store's own writer (`RecordingSink`) into a scratch SQLite file, builds the page
(`voiceagent report --format html`) and opens it in Chromium `--loads` times. Prints:

- build: reading the records and computing the page in Python (not the browser's share);
- render: navigation start → every chart drawn (report.js done), and → the load event; the
  median of the loads, Chromium already running.

Run: `.venv/bin/python benchmarks/report_render.py [--calls 10000] [--turns 5] [--loads 5]`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from voiceagent.config import load_config
from voiceagent.logging import configure_logging
from voiceagent.report.browser import chromium
from voiceagent.report.page import html_report
from voiceagent.session.call import CallSession, EndReason
from voiceagent.sim.rehearsal import SAMPLE
from voiceagent.store.records.sink import RecordingSink

NUMBERS = (("+18005550103", "realtime-passthrough", "realtime"), ("+18005550103", "relay-router",
           "relay"), ("+18005550101", "realtime-passthrough", None),
           ("+18005550102", "relay-router", None))  # fmt: skip
WEEK_S = 7 * 86400


def _call(i: int, calls: int, rng: np.random.Generator, turns: int, now: float) -> CallSession:
    """Call `i` of `calls`, spread evenly over the last week; figures drawn from gamma laws."""
    number, mode, arm = NUMBERS[i % len(NUMBERS)]
    call = CallSession(f"CA{i:032x}", number, mode, arm=arm, started=0.0,
                       started_wall=now - WEEK_S + WEEK_S * i / calls,
                       record_transcripts=i % 50 == 0)  # fmt: skip
    base = 450.0 if mode == "realtime-passthrough" else 520.0
    clock = 0.0
    for k in range(turns + 1):
        turn = call.latency.start_turn(clock, "greeting" if k == 0 else "turn",
                                       user_text="" if k == 0 else f"question {k}")  # fmt: skip
        ttfb = rng.gamma(9.0, base / 9.0) / 1000
        call.latency.upstream_byte(clock + ttfb)
        call.latency.audio_out(clock + ttfb + rng.gamma(2.0, 4.0) / 1000)
        if mode == "realtime-passthrough":
            call.latency.heard(clock + ttfb + 0.09)
        else:
            call.latency.clip_fetched(clock + ttfb + 0.3)
        turn.agent_text = f"answer {k}"
        if rng.random() < 0.1:
            call.latency.barge_in(clock + ttfb + 0.8, clock + ttfb + 0.83)
            call.counters.barge_ins += 1
        clock += 6.0
    call.counters.turns = turns
    if rng.random() < 0.01:
        call.upstream_failure = "timeout" if rng.random() < 0.5 else "refused"
        call.counters.upstream_errors += 1
    call.end(EndReason.CALLER_HANGUP, now=clock)
    return call


async def _write(url: str, calls: int, turns: int) -> float:
    rng = np.random.default_rng(1)
    sink = RecordingSink(url, max_queue=calls * (turns + 3))
    await sink.start()
    t0 = time.perf_counter()
    now = time.time()
    for i in range(calls):
        call = _call(i, calls, rng, turns, now)
        sink.call_started(call)
        for turn in call.latency.turns:
            sink.turn_finished(call, turn)
        sink.call_ended(call)
    await sink.drained()  # all of it: stop() alone flushes only for a few seconds
    await sink.stop()
    return time.perf_counter() - t0


async def main(calls: int, turns: int, loads: int) -> None:
    configure_logging("warning")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/records.sqlite3"
        wrote = await _write(url, calls, turns)
        t0 = time.perf_counter()
        page = await html_report(url, since=None, config=load_config(SAMPLE), source="benchmark")
        built = time.perf_counter() - t0
        path = Path(tmp) / "report.html"
        path.write_text(page, encoding="utf-8")
        drawn, loaded = [], []
        async with chromium() as tab:
            for _ in range(loads):
                await tab.goto(path.as_uri())
                state = await tab.evaluate("window.voiceagentReport")
                assert state["ready"] and not tab.errors, (state["error"], tab.errors)
                drawn.append(state["renderedMs"] / 1000)
                timing = await tab.evaluate("performance.getEntriesByType('navigation')[0]"
                                            ".loadEventEnd")  # fmt: skip
                loaded.append(timing / 1000)
            charts = len(state["charts"])
    print(f"records   {calls} calls, {calls * (turns + 1)} turns written in {wrote:.1f} s")
    print(
        f"build     {built:.2f} s in Python (read + statistics + page), page "
        f"{len(page) / 1024:.0f} KiB, {charts} charts"
    )
    print(
        f"render    {statistics.median(drawn):.2f} s to every chart drawn, "
        f"{statistics.median(loaded):.2f} s to the load event (median of {loads}; "
        f"target < 2 s)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--loads", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.turns, args.loads))
