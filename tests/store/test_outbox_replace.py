"""The outbox's one replacement rule, on SQLite and PostgreSQL: a failover leg's final event
replaces the failed leg's provisional one, and placeholders move its due time, only while
nobody has tried to deliver it (no attempt, no lease); a final event is never replaced."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.store.conftest import Database
from voiceagent.store.records.rows import Record, fitted, write
from voiceagent.store.records.schema import migrate, webhook_events
from voiceagent.webhooks.events import DELIVERED, PENDING, event_id, outbox_row, placeholder_row
from voiceagent.webhooks.outbox import lease_due, settle

SID = "CA" + "8" * 32
EVT = event_id(SID, "call.ended")
URL = "http://127.0.0.1:9/events"
HOLD_S = 60.0


def _event(leg: str, now: datetime, hold_s: float = 0.0) -> dict[str, Any]:
    payload = {"type": "call.ended", "event_id": EVT, "call_sid": SID, "leg": leg}
    return outbox_row(payload, URL, now, hold_s=hold_s)


@pytest.fixture
async def engine(database: Database) -> AsyncIterator[AsyncEngine]:
    engine = database.engine()
    try:
        await migrate(engine)
        yield engine
    finally:
        await engine.dispose()


async def _write(engine: AsyncEngine, row: dict[str, Any]) -> None:
    """One outbox row written as the records writer writes it (its own transaction)."""
    async with engine.begin() as conn:
        await write(conn, [fitted(Record("event", {"call_sid": SID}, None, (row,)))])


async def _row(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        query = select(webhook_events).where(webhook_events.c.event_id == EVT)
        row = dict((await conn.execute(query)).mappings().one())
    due = row["next_attempt_at"]
    row["next_attempt_at"] = due if due.tzinfo else due.replace(tzinfo=UTC)
    row["leg"] = orjson.loads(row["body"])["leg"] if row["body"] else None
    return row


async def test_final_event_replaces_an_untried_provisional_one(engine: AsyncEngine) -> None:
    """The provisional event waits its hold; the final one replaces it, due at once; a
    provisional one written after that changes nothing."""
    now = datetime.now(UTC)
    await _write(engine, _event("realtime", now, HOLD_S))
    held = await _row(engine)
    assert held["status"] == "provisional" and held["leg"] == "realtime"
    assert held["next_attempt_at"] >= now + timedelta(seconds=HOLD_S - 1)
    later = now + timedelta(seconds=5)
    await _write(engine, _event("relay", later))
    final = await _row(engine)
    assert final["status"] == PENDING and final["leg"] == "relay"
    assert abs(final["next_attempt_at"] - later) < timedelta(seconds=1)
    await _write(engine, _event("realtime", later, HOLD_S))
    await _write(engine, placeholder_row(SID, later + timedelta(seconds=HOLD_S), later))
    kept = await _row(engine)
    assert kept["leg"] == "relay" and kept["status"] == PENDING
    assert kept["next_attempt_at"] == final["next_attempt_at"]


@pytest.mark.parametrize("tried", ["leased", "retrying", "delivered"])
async def test_a_tried_provisional_event_is_never_replaced(engine: AsyncEngine, tried: str) -> None:
    """Once a deliverer has leased the provisional event (or made an attempt, failed or
    delivered), neither the final event nor a placeholder changes it."""
    now = datetime.now(UTC)
    await _write(engine, _event("realtime", now, HOLD_S))
    due = now + timedelta(seconds=HOLD_S + 1)
    async with engine.begin() as conn:
        taken = await lease_due(conn, "owner", due, due + timedelta(seconds=30), 10)
    assert [t.event_id for t in taken] == [EVT]
    if tried != "leased":
        status = DELIVERED if tried == "delivered" else PENDING
        next_at = None if tried == "delivered" else due + timedelta(seconds=10)
        async with engine.begin() as conn:
            assert await settle(conn, taken[0], "owner", status=status, next_at=next_at,
                                http_status=200 if next_at is None else 503, error=None,
                                now=due)  # fmt: skip
    before = await _row(engine)
    await _write(engine, _event("relay", now + timedelta(seconds=5)))
    await _write(engine, placeholder_row(SID, now, now))
    after = await _row(engine)
    assert after["leg"] == "realtime"
    assert (after["status"], after["attempts"], after["next_attempt_at"]) == (
        before["status"], before["attempts"], before["next_attempt_at"],
    )  # fmt: skip


async def test_placeholders_move_the_provisional_events_due_time(engine: AsyncEngine) -> None:
    """A release that reaches the outbox before the provisional event waits for it (never
    delivered itself) and makes it due at once; a later placeholder holds it on again."""
    now = datetime.now(UTC)
    await _write(engine, placeholder_row(SID, now, now))
    assert (await _row(engine))["status"] == "placeholder"
    async with engine.begin() as conn:  # nothing to deliver yet
        assert await lease_due(conn, "owner", now + timedelta(seconds=1), now, 10) == []
    await _write(engine, _event("realtime", now + timedelta(seconds=1), HOLD_S))
    released = await _row(engine)
    assert released["status"] == "provisional" and released["leg"] == "realtime"
    assert abs(released["next_attempt_at"] - now) < timedelta(milliseconds=1)  # the release's
    held_on = now + timedelta(seconds=300)
    await _write(engine, placeholder_row(SID, held_on, now))
    assert abs((await _row(engine))["next_attempt_at"] - held_on) < timedelta(milliseconds=1)
    await _write(engine, _event("relay", now + timedelta(seconds=2)))
    final = await _row(engine)
    assert final["leg"] == "relay" and final["status"] == PENDING
    assert final["next_attempt_at"] < held_on
