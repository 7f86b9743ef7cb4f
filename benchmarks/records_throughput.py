"""Telemetry cost: what the sinks add to a call's hot path, and how fast records are written.

- hot path: microseconds per milestone handed to the app's sink (metrics + recording), i.e.
  what a mode pays per finished turn; the writer runs elsewhere on the loop;
- writer: calls (start + N turns + end) per second committed to SQLite and, if it answers,
  PostgreSQL (`TEST_DATABASE_URL`, in a scratch schema dropped afterwards).

Run: `.venv/bin/python benchmarks/records_throughput.py [--calls 2000] [--turns 8]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid

from sqlalchemy import text

from voiceagent.logging import configure_logging
from voiceagent.metrics import FanOutSink, Metrics, MetricsSink
from voiceagent.session.call import CallSession, EndReason
from voiceagent.store.records import RecordingSink
from voiceagent.store.schema import make_engine

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _feed(sink: FanOutSink, calls: int, turns: int) -> float:
    """Feed `calls` calls of `turns` turns; seconds spent inside the sink."""
    spent = 0.0
    for i in range(calls):
        call = CallSession(f"CA{i:032d}", "+18005550103", "relay-router", arm="B", started=0.0)
        t0 = time.perf_counter()
        sink.call_started(call)
        spent += time.perf_counter() - t0
        for k in range(turns):
            turn = call.latency.start_turn(k * 5.0)
            call.latency.upstream_byte(k * 5.0 + 0.4)
            call.latency.audio_out(k * 5.0 + 0.45)
            t0 = time.perf_counter()
            sink.turn_finished(call, turn)
            spent += time.perf_counter() - t0
        call.end(EndReason.CALLER_HANGUP, now=turns * 5.0)
        t0 = time.perf_counter()
        sink.call_ended(call)
        spent += time.perf_counter() - t0
    return spent


async def _run(name: str, recorder: RecordingSink, calls: int, turns: int) -> None:
    await recorder.start()
    sink = FanOutSink([MetricsSink(Metrics()), recorder])
    t0 = time.perf_counter()
    spent = _feed(sink, calls, turns)
    await recorder.drained()
    elapsed = time.perf_counter() - t0
    milestones = calls * (turns + 2)
    await recorder.stop()
    print(f"{name:<11} hot path {spent / milestones * 1e6:6.1f} µs/milestone   writer "
          f"{calls / elapsed:7.0f} calls/s ({milestones / elapsed:7.0f} rows/s), "
          f"dropped {recorder.dropped}")  # fmt: skip


async def main(calls: int, turns: int) -> None:
    configure_logging("warning")
    queue = calls * (turns + 2)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"
        await _run("sqlite", RecordingSink(url, max_queue=queue), calls, turns)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_URL)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        print(f"postgresql  skipped: {exc!r}")
        await admin.dispose()
        return
    engine = make_engine(PG_URL, schema=schema)
    try:
        await _run("postgresql", RecordingSink(engine, max_queue=queue), calls, turns)
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--turns", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.turns))
