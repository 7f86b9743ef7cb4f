"""Records survive bad rows and database outages, and the writer stays off the serving loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url
from structlog.testing import capture_logs

from tests.rig import until
from tests.store.conftest import Database
from tests.store.tcp_gate import TcpGate
from voiceagent.session.call import CallSession, EndReason
from voiceagent.store.records.schema import calls, make_engine, migrate, turns
from voiceagent.store.records.sink import RecordingSink

SECRET = "my PIN is 4111"
ON_POSTGRES = pytest.mark.parametrize(
    "database", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)  # the TcpGate cuts a network database
REFUSE_POISON = {
    "postgresql": "ALTER TABLE turns ADD CONSTRAINT no_poison CHECK (kind <> 'poison')",
    "sqlite": "CREATE TRIGGER no_poison BEFORE INSERT ON turns WHEN NEW.kind = 'poison' "
    "BEGIN SELECT RAISE(ABORT, 'poison'); END",
}


def _call(call_sid: str, **fields: Any) -> CallSession:
    fields = {"number": "+18005550103", "mode": "relay-router"} | fields
    return CallSession(call_sid, started=100.0, started_wall=1_800_000_000.0, **fields)


def _record_call(sink: RecordingSink, call: CallSession, kind: Any = "greeting") -> None:
    sink.call_started(call)
    turn = call.latency.start_turn(100.0, kind, user_text=SECRET)
    call.latency.audio_out(100.4)
    turn.agent_text = "ok\x00" + SECRET
    sink.turn_finished(call, turn)
    call.end(EndReason.CALLER_HANGUP, now=103.0)
    sink.call_ended(call)


async def _rows(db: Database, table: Any) -> list[Any]:
    engine = db.engine()
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(select(table))).mappings())
    finally:
        await engine.dispose()


@pytest.fixture
async def gated(database: Database) -> AsyncIterator[tuple[Database, TcpGate]]:
    """The PostgreSQL test database reached through a TcpGate (closed at first)."""
    url = make_url(database.url)
    gate = TcpGate(url.host or "127.0.0.1", url.port or 5432)
    through = url.set(host="127.0.0.1", port=gate.port)
    try:
        yield Database(through.render_as_string(hide_password=False), database.schema), gate
    finally:
        await gate.close()


async def test_bad_rows_cost_only_themselves(database: Database) -> None:
    """In one batch: oversize values are cut to their columns and kept, a row the database
    still refuses is skipped and logged once without its values, and the other calls' rows
    are all written."""
    engine = database.engine()
    await migrate(engine)
    async with engine.begin() as conn:  # the database refuses this one turn
        await conn.execute(text(REFUSE_POISON[conn.dialect.name]))
    sink = RecordingSink(engine)
    huge = _call("CA" + "7" * 900, number="+1" + "5" * 4000, record_transcripts=True)
    _record_call(sink, _call("CAgood1"))
    _record_call(sink, huge)
    _record_call(sink, _call("CApoison"), kind="poison")
    _record_call(sink, _call("CAgood2"))
    with capture_logs() as logs:
        await sink.start()  # everything above is one batch
        await sink.stop()
    await engine.dispose()
    stored = {row["call_sid"]: row for row in await _rows(database, calls)}
    assert set(stored) == {"CAgood1", "CA" + "7" * 62, "CApoison", "CAgood2"}
    assert len(stored["CA" + "7" * 62]["number"]) == 32
    kept = await _rows(database, turns)
    assert sorted(t["call_sid"][:8] for t in kept) == ["CA777777", "CAgood1", "CAgood2"]
    assert [t["agent_text"] for t in kept if t["agent_text"]] == ["ok" + SECRET]
    assert (sink.stats.rejected, sink.stats.written) == (1, 11)
    rejected = [e for e in logs if e["event"] == "record_rejected"]
    assert len(rejected) == 1 and rejected[0]["call_sid"] == "CApoison"
    assert rejected[0]["sqlstate"] == ("23514" if database.schema else None)
    assert not any(SECRET in repr(e) or "5555555555" in repr(e) for e in logs)


@ON_POSTGRES
async def test_records_wait_while_the_database_is_unreachable_at_start(
    gated: tuple[Database, TcpGate],
) -> None:
    """With the database down at start, records wait in the bounded buffer (overflow dropped
    and counted) and are written once it answers."""
    db, gate = gated
    sink = RecordingSink(db.engine(), max_queue=6)
    with capture_logs() as logs:
        await sink.start()
        for i in range(10):
            sink.call_started(_call(f"CA{i}"))
        await until(lambda: not sink.stats.database_up)
        await gate.open()
        await asyncio.wait_for(sink.drained(), 60)
        await sink.stop()
    await sink.engine.dispose()
    assert len(await _rows(db, calls)) == 6
    assert (sink.stats.written, sink.stats.dropped, sink.stats.lost) == (6, 4, 0)
    events = [e["event"] for e in logs]
    assert events.count("records_database_down") == 1 and "records_database_up" in events
    assert "records_buffer_full" in events


@ON_POSTGRES
async def test_records_written_after_the_database_comes_back(
    gated: tuple[Database, TcpGate],
) -> None:
    """A database lost mid-run: records of calls going on are kept and written when it returns."""
    db, gate = gated
    await gate.open()
    sink = RecordingSink(db.engine())
    await sink.start()
    sink.call_started(_call("CAbefore"))
    await asyncio.wait_for(sink.drained(), 60)
    await gate.close()
    _record_call(sink, _call("CAduring"))
    await until(lambda: not sink.stats.database_up)
    await gate.open()
    await asyncio.wait_for(sink.drained(), 60)
    await sink.stop()
    await sink.engine.dispose()
    assert {r["call_sid"] for r in await _rows(db, calls)} == {"CAbefore", "CAduring"}
    assert len(await _rows(db, turns)) == 1
    assert sink.stats.outages == 1 and sink.stats.database_up


@ON_POSTGRES
async def test_records_still_buffered_at_shutdown_are_counted_as_lost(
    gated: tuple[Database, TcpGate],
) -> None:
    """If the database is still down when the server stops, what could not be written is
    counted as lost and logged, not silently dropped."""
    db, _ = gated
    sink = RecordingSink(db.engine(), flush_timeout=0.5)
    await sink.start()
    for i in range(3):
        sink.call_started(_call(f"CA{i}"))
    with capture_logs() as logs:
        await sink.stop()
    await sink.engine.dispose()
    assert (sink.stats.lost, sink.stats.written, sink.pending) == (3, 0, 0)
    assert any(e["event"] == "records_lost" for e in logs)


async def test_the_writer_runs_on_its_own_thread(tmp_path: Any) -> None:
    """The database connections of the records writer are opened off the serving thread."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'r.sqlite3'}")
    threads: set[int] = set()
    event.listen(engine.sync_engine.pool, "connect", lambda *_: threads.add(threading.get_ident()))
    sink = RecordingSink(engine)
    await sink.start()
    _record_call(sink, _call("CAthread"))
    await sink.stop()
    await engine.dispose()
    assert sink.stats.written == 3
    assert threads and threading.get_ident() not in threads
