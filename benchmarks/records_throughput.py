"""Telemetry cost: what the sinks add to a call's hot path, and how fast records are written.

- hot path: microseconds per milestone handed to the app's sink (metrics + recording), i.e.
  what a mode pays per finished turn; the writer runs on its own thread and event loop;
- serving-loop lag: how late a 1 ms timer on the serving loop fires while the writer works
  (the writer thread competes for the GIL only between its database round trips);
- writer: calls (start + N turns + end) per second committed to SQLite and, if it answers,
  PostgreSQL (`TEST_DATABASE_URL`, in a scratch schema dropped afterwards).

- live: the serving-loop lag with `--live-calls` calls in flight (a turn every 4 s each),
  metrics only and then with records on: what records add to a live call's latency.

Run: `.venv/bin/python benchmarks/records_throughput.py [--calls 2000] [--turns 8]
[--live-calls 100] [--live-seconds 10]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from voiceagent.logging import configure_logging
from voiceagent.metrics import FanOutSink, Metrics, MetricsSink
from voiceagent.session.call import CallSession, EndReason
from voiceagent.store.records.schema import make_engine
from voiceagent.store.records.sink import RecordingSink

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


async def _loop_lag(lags: list[float]) -> None:
    """How late a 1 ms sleep on the serving loop wakes up (what a call would wait)."""
    while True:
        t0 = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append((time.perf_counter() - t0 - 0.001) * 1000)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def _run(name: str, recorder: RecordingSink, calls: int, turns: int) -> None:
    await recorder.start()
    sink = FanOutSink([MetricsSink(Metrics()), recorder])
    t0 = time.perf_counter()
    spent = _feed(sink, calls, turns)
    lags: list[float] = []
    probe = asyncio.create_task(_loop_lag(lags))
    await recorder.drained()
    elapsed = time.perf_counter() - t0
    probe.cancel()
    milestones = calls * (turns + 2)
    await recorder.stop()
    print(f"  {name:<11} hot path {spent / milestones * 1e6:6.1f} µs/milestone   writer "
          f"{calls / elapsed:7.0f} calls/s ({milestones / elapsed:7.0f} rows/s), "
          f"dropped {recorder.dropped}; serving-loop lag while it writes: p50 "
          f"{_pct(lags, 0.5):.2f} ms, p99 {_pct(lags, 0.99):.2f} ms, "
          f"max {max(lags, default=0.0):.2f} ms")  # fmt: skip


async def _live(sink: FanOutSink, calls: int, seconds: float) -> list[float]:
    """`calls` calls in flight, each finishing a turn every 4 s, for `seconds`: the lag of
    the serving loop meanwhile (what records add to a live call's latency)."""
    lags: list[float] = []
    stop = asyncio.Event()

    async def call(i: int) -> None:
        call = CallSession(f"CA{uuid.uuid4().hex}", "+18005550103", "relay-router", arm="B")
        sink.call_started(call)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), i * 4.0 / calls)
        while not stop.is_set():
            now = time.monotonic()
            turn = call.latency.start_turn(now)
            call.latency.upstream_byte(now + 0.4)
            call.latency.audio_out(now + 0.45)
            sink.turn_finished(call, turn)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 4.0)
        call.end(EndReason.CALLER_HANGUP)
        sink.call_ended(call)

    probe = asyncio.create_task(_loop_lag(lags))
    async with asyncio.TaskGroup() as group:
        for i in range(calls):
            group.create_task(call(i))
        await asyncio.sleep(seconds)
        stop.set()
    probe.cancel()
    return lags


def _lag_line(name: str, lags: list[float]) -> None:
    print(f"  {name:<30} serving-loop lag p50 {_pct(lags, 0.5):.2f} ms, p99 "
          f"{_pct(lags, 0.99):.2f} ms, p99.9 {_pct(lags, 0.999):.2f} ms")  # fmt: skip


async def _each_database() -> AsyncIterator[tuple[str, str | AsyncEngine]]:
    """A scratch SQLite file and, if it answers, a scratch PostgreSQL schema."""
    with tempfile.TemporaryDirectory() as tmp:
        yield "sqlite", f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"
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
        yield "postgresql", engine
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def main(calls: int, turns: int, live_calls: int, live_s: float) -> None:
    configure_logging("warning")
    queue = calls * (turns + 2)
    print(f"flood: {calls} calls of {turns} turns handed over at once")
    async for name, database in _each_database():
        await _run(name, RecordingSink(database, max_queue=queue), calls, turns)
    if live_calls <= 0:
        return
    print(f"live: {live_calls} calls in flight, a turn every 4 s each, {live_s:.0f} s")
    _lag_line("metrics only", await _live(FanOutSink([MetricsSink(Metrics())]), live_calls, live_s))
    async for name, database in _each_database():
        recorder = RecordingSink(database)
        await recorder.start()
        sink = FanOutSink([MetricsSink(Metrics()), recorder])
        _lag_line(f"metrics + {name} records", await _live(sink, live_calls, live_s))
        await recorder.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--live-calls", type=int, default=100)
    parser.add_argument("--live-seconds", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.turns, args.live_calls, args.live_seconds))
