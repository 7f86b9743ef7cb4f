"""Records on a database that answers but cannot write (issue 25): a full SQLite file (its
`max_page_count` held at its current size) or a read-only PostgreSQL session. The batch waits
and is written once the database can write again; no row is dropped as if it were bad."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, select
from structlog.testing import capture_logs

from tests.rig import until
from tests.store.conftest import Database
from voiceagent.session.call import CallSession, EndReason
from voiceagent.store.records.schema import calls, migrate, turns
from voiceagent.store.records.sink import RecordingSink

LONG_TEXT = "words of a long turn " * 400  # ~8 KB: a turn row needs new pages
BROKEN = {
    "sqlite": "PRAGMA max_page_count = 1",  # clamped to the current size: the disk is full
    "postgresql": "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
}
HEALTHY = {
    "sqlite": "PRAGMA max_page_count = 1073741823",
    "postgresql": "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
}


def _record_call(sink: RecordingSink, call_sid: str) -> None:
    call = CallSession(call_sid, number="+18005550103", mode="relay-router", started=100.0,
                       started_wall=1_800_000_000.0, record_transcripts=True)  # fmt: skip
    sink.call_started(call)
    turn = call.latency.start_turn(100.0, "answer", user_text=LONG_TEXT)
    call.latency.audio_out(100.4)
    sink.turn_finished(call, turn)
    call.end(EndReason.CALLER_HANGUP, now=103.0)
    sink.call_ended(call)


async def test_records_wait_out_a_full_or_read_only_database(database: Database) -> None:
    """While every write fails for lack of space (SQLite FULL) or a read-only transaction
    (PostgreSQL 25006), though `SELECT 1` still answers: nothing is rejected or lost, new
    records wait in the buffer, and all 15 rows are written once the database can write."""
    engine = database.engine()
    await migrate(engine)
    dialect = engine.dialect.name
    disk = {"broken": True}

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _space(dbapi_connection: Any, *_: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(BROKEN[dialect] if disk["broken"] else HEALTHY[dialect])
        cursor.close()
        dbapi_connection.commit()  # the next transaction starts with the new setting

    sink = RecordingSink(engine)
    with capture_logs() as logs:
        await sink.start()
        for i in range(4):
            _record_call(sink, f"CAfull{i}")
        await until(lambda: not sink.stats.database_up)
        _record_call(sink, "CAduring")  # arrives during the outage: waits in the buffer
        await asyncio.sleep(0.5)
        assert (sink.stats.written, sink.stats.rejected, sink.stats.lost) == (0, 0, 0)
        disk["broken"] = False
        await asyncio.wait_for(sink.drained(), 60)
        await sink.stop()
    async with engine.connect() as conn:
        stored = list((await conn.execute(select(calls.c.call_sid, calls.c.end_reason))).all())
        kept = list((await conn.execute(select(turns.c.user_text))).scalars())
    await engine.dispose()
    assert sorted(sid for sid, _ in stored) == ["CAduring"] + [f"CAfull{i}" for i in range(4)]
    assert all(reason == "caller_hangup" for _, reason in stored)
    assert len(kept) == 5 and all(text == LONG_TEXT for text in kept)
    assert (sink.stats.written, sink.stats.rejected, sink.stats.outages) == (15, 0, 1)
    events = [e["event"] for e in logs]
    assert "record_rejected" not in events and events.count("records_database_down") == 1
