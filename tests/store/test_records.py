"""RecordingSink: calls and turns reach SQLite and the real PostgreSQL as the call goes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from tests.store.conftest import Database
from voiceagent.session.call import CallSession, EndReason
from voiceagent.store.records.schema import calls, migrate, turns
from voiceagent.store.records.sink import RecordingSink

CRASHER = Path(__file__).with_name("crash_caller.py")


def _call(**fields: Any) -> CallSession:
    fields = {
        "call_sid": "CA" + "1" * 32,
        "number": "+18005550103",
        "mode": "relay-router",
    } | fields
    return CallSession(started=100.0, started_wall=1_800_000_000.0, **fields)


def _finish_turn(call: CallSession, start: float, user: str = "hi", agent: str = "hello") -> Any:
    turn = call.latency.start_turn(start, "greeting" if start == 100.0 else "turn", user_text=user)
    call.latency.upstream_byte(start + 0.3)
    call.latency.audio_out(start + 0.35)
    turn.agent_text = agent
    call.counters.turns += 1
    return turn


async def _rows(db: Database, table: Any) -> list[Any]:
    engine = db.engine()
    try:
        async with engine.connect() as conn:
            order = table.c.call_sid if table is calls else table.c.id
            return list((await conn.execute(select(table).order_by(order))).mappings())
    finally:
        await engine.dispose()


async def test_call_and_turns_are_written_as_the_call_goes(database: Database) -> None:
    """The call row exists from the start, each turn as it finishes, the end updates the row."""
    sink = RecordingSink(database.engine())
    await sink.start()
    call = _call(arm="B", experiment="voice-test")
    sink.call_started(call)
    await sink.drained()
    [row] = await _rows(database, calls)
    assert (row["arm"], row["experiment"], row["ended_at"]) == ("B", "voice-test", None)
    sink.turn_finished(call, _finish_turn(call, 100.0))
    sink.turn_finished(call, _finish_turn(call, 105.0))
    await sink.drained()
    rows = await _rows(database, turns)
    assert [(t["turn_index"], t["kind"]) for t in rows] == [(0, "greeting"), (1, "turn")]
    assert rows[1]["response_ms"] == 350.0 and rows[1]["upstream_ttfb_ms"] == 300.0
    assert rows[1]["overhead_ms"] == 50.0 and rows[1]["heard_ms"] is None
    call.counters.barge_ins = 1
    call.end(EndReason.CALLER_HANGUP, now=110.0)
    sink.call_ended(call)
    await sink.stop()
    await sink.engine.dispose()
    [row] = await _rows(database, calls)
    assert row["end_reason"] == "caller_hangup" and row["duration_s"] == 10.0
    assert (row["turns"], row["barge_ins"]) == (2, 1)
    assert row["ended_at"] is not None


async def test_transcripts_are_kept_only_when_the_plan_allows(database: Database) -> None:
    """Turn texts are stored for record_transcripts calls and left out for the others."""
    sink = RecordingSink(database.engine())
    await sink.start()
    private, recorded = (
        _call(call_sid="CAprivate"),
        _call(call_sid="CAkept", record_transcripts=True),
    )
    for call in (private, recorded):
        sink.call_started(call)
        sink.turn_finished(call, _finish_turn(call, 100.0, user="my card is 4111", agent="ok"))
    await sink.stop()
    await sink.engine.dispose()
    texts = {t["call_sid"]: (t["user_text"], t["agent_text"]) for t in await _rows(database, turns)}
    assert texts == {"CAprivate": (None, None), "CAkept": ("my card is 4111", "ok")}


async def test_failover_leg_takes_over_the_call_row(database: Database) -> None:
    """A second leg of the same CallSid keeps one row: new mode, failover_from, summed counts."""
    sink = RecordingSink(database.engine())
    await sink.start()
    first = _call(mode="realtime-passthrough", arm="A", experiment="x")
    sink.call_started(first)
    first.counters.frames_in = 50
    first.upstream_failure = "capacity"
    first.end(EndReason.UPSTREAM_FAILED, now=101.0)
    sink.call_ended(first)
    second = _call(arm="A", experiment="x", failover_from="realtime-passthrough")
    sink.call_started(second)
    sink.turn_finished(second, _finish_turn(second, 100.0))
    second.counters.frames_in = 7
    second.end(EndReason.CALLER_HANGUP, now=104.0)
    sink.call_ended(second)
    await sink.stop()
    await sink.engine.dispose()
    [row] = await _rows(database, calls)
    assert (row["mode"], row["failover_from"], row["arm"]) == (
        "relay-router",
        "realtime-passthrough",
        "A",
    )
    assert (row["end_reason"], row["upstream_failure"]) == ("caller_hangup", "capacity")
    assert (row["frames_in"], row["turns"], row["duration_s"]) == (57, 1, 5.0)
    [turn] = await _rows(database, turns)
    assert turn["mode"] == "relay-router"


async def test_stop_flushes_everything_queued(database: Database) -> None:
    """Records still queued at shutdown are written before stop() returns."""
    sink = RecordingSink(database.engine(), batch_size=7)
    await sink.start()
    for i in range(40):
        call = _call(call_sid=f"CA{i:032d}")
        sink.call_started(call)
        sink.turn_finished(call, _finish_turn(call, 100.0))
        call.end(EndReason.CALLER_HANGUP, now=102.0)
        sink.call_ended(call)
    await sink.stop()
    await sink.engine.dispose()
    assert len(await _rows(database, calls)) == 40
    assert len(await _rows(database, turns)) == 40
    assert sink.written == 120 and sink.dropped == 0


async def test_hot_path_never_waits_and_counts_what_a_full_queue_drops(tmp_path: Path) -> None:
    """With the queue full, milestones are dropped and counted instead of blocking the call."""
    sink = RecordingSink(f"sqlite+aiosqlite:///{tmp_path / 'r.sqlite3'}", max_queue=2)
    call = _call()
    for _ in range(3):
        sink.call_started(call)
    assert sink.dropped == 1
    await sink.start()
    await sink.stop()
    assert sink.written == 2


async def test_migrations_run_at_start_and_are_idempotent(database: Database) -> None:
    """Starting twice on the same database upgrades once and leaves it at the head revision."""
    engine = database.engine()
    try:
        await migrate(engine)
        await migrate(engine)
        async with engine.connect() as conn:
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    finally:
        await engine.dispose()
    assert version == [("0007",)]  # the newest migration


async def test_killed_process_keeps_every_finished_turn(database: Database) -> None:
    """A process SIGKILLed mid-call leaves its call row and both finished turns in the database."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(CRASHER), database.url, database.schema or "",
        stdout=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert line.strip() == b"mid_call", line
    proc.send_signal(signal.SIGKILL)
    assert await proc.wait() == -signal.SIGKILL
    [row] = await _rows(database, calls)
    assert row["call_sid"] == "CAcrash" and row["ended_at"] is None
    kept = await _rows(database, turns)
    assert [(t["turn_index"], t["response_ms"]) for t in kept] == [(0, 350.0), (1, 350.0)]


MIGRATOR = """
import asyncio, sys
from voiceagent.store.records.schema import make_engine, migrate

async def main():
    engine = make_engine(sys.argv[1], schema=sys.argv[2] or None)
    await migrate(engine)
    await engine.dispose()

asyncio.run(main())
"""


async def test_processes_starting_together_migrate_once(database: Database) -> None:
    """Three processes migrating a fresh database at once all succeed (one migrates, the others
    wait for its lock and find the schema at head)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    args = (sys.executable, "-c", MIGRATOR, database.url, database.schema or "")
    procs = [
        await asyncio.create_subprocess_exec(*args, env=env, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    results = [await asyncio.wait_for(p.communicate(), 60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in results]
    assert await _rows(database, calls) == []
