"""The call-events outbox on SQLite and PostgreSQL: leasing lets exactly one deliverer take
an attempt, 5xx reschedules with backoff, a lease that expires lets another deliverer in."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.store.conftest import Database
from voiceagent.sim.hooks_receiver import HooksReceiver
from voiceagent.store.records.schema import migrate, webhook_events
from voiceagent.webhooks.delivery import Deliverer, RetryPolicy
from voiceagent.webhooks.events import outbox_row
from voiceagent.webhooks.outbox import lease_due

SECRET = "outbox-secret-0123456789"


def _deliverer(engine: AsyncEngine, http: aiohttp.ClientSession, **kw: object) -> Deliverer:
    options: dict[str, object] = {"policy": RetryPolicy(first_s=0.2, max_s=60), "lease_s": 5.0,
                                  "poll_s": 0.05, "timeout_s": 2.0} | kw  # fmt: skip
    return Deliverer(engine, http, SECRET, **options)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def _session(db: Database) -> AsyncIterator[tuple[AsyncEngine, aiohttp.ClientSession]]:
    """An engine on the test's database and an HTTP client, closed afterwards."""
    engine = db.engine()
    try:
        async with aiohttp.ClientSession() as http:
            yield engine, http
    finally:
        await engine.dispose()


async def _event(db: Database, url: str, sid: str = "CA" + "7" * 32) -> str:
    engine = db.engine()
    try:
        await migrate(engine)
        payload = {"type": "call.ended", "event_id": "evt_" + sid[-8:], "call_sid": sid}
        async with engine.begin() as conn:
            await conn.execute(insert(webhook_events), [outbox_row(payload, url)])
    finally:
        await engine.dispose()
    return str(payload["event_id"])


async def _row(db: Database, event_id: str) -> dict[str, object]:
    engine = db.engine()
    try:
        async with engine.connect() as conn:
            query = select(webhook_events).where(webhook_events.c.event_id == event_id)
            return dict((await conn.execute(query)).mappings().one())
    finally:
        await engine.dispose()


async def test_one_attempt_one_deliverer(database: Database) -> None:
    """Two deliverers polling at once: the event's request is sent once, then it is delivered."""
    receiver = await HooksReceiver(SECRET).start()
    receiver.hold_events = hold = asyncio.Event()
    try:
        event_id = await _event(database, receiver.events_url)
        async with _session(database) as (engine, http):
            first, second = _deliverer(engine, http), _deliverer(engine, http)
            tasks = [asyncio.create_task(d.deliver_due()) for d in (first, second)]
            await receiver.wait_arrived(1)
            await asyncio.sleep(0.3)
            assert receiver.arrived == 1
            hold.set()
            taken = await asyncio.gather(*tasks)
        assert sorted(taken) == [0, 1]
        row = await _row(database, event_id)
        assert row["status"] == "delivered" and row["attempts"] == 1
    finally:
        await receiver.stop()


async def test_5xx_is_retried_with_backoff(database: Database) -> None:
    """A 503 keeps the event pending, due again after the first backoff; then it is delivered."""
    receiver = await HooksReceiver(SECRET, events_status=503).start()
    try:
        event_id = await _event(database, receiver.events_url)
        async with _session(database) as (engine, http):
            deliverer = _deliverer(engine, http, jitter=lambda: 1.0)
            assert await deliverer.deliver_due() == 1
            row = await _row(database, event_id)
            assert row["status"] == "pending" and row["attempts"] == 1 and row["last_status"] == 503
            assert await deliverer.deliver_due() == 0  # not due yet
            receiver.events_status = 200
            await asyncio.sleep(0.3)
            assert await deliverer.deliver_due() == 1
        assert (await _row(database, event_id))["status"] == "delivered"
        assert list(receiver.events) == [event_id]
    finally:
        await receiver.stop()


async def test_expired_lease_lets_another_deliver(database: Database) -> None:
    """An event leased by a deliverer that never finished is taken by another once the lease
    has expired (their clocks are moved, not waited for)."""
    receiver = await HooksReceiver(SECRET).start()
    try:
        event_id = await _event(database, receiver.events_url)
        later = datetime.now(UTC) + timedelta(seconds=30)
        async with _session(database) as (engine, http):
            async with engine.begin() as conn:
                now = datetime.now(UTC)
                taken = await lease_due(conn, "dead", now, now + timedelta(seconds=5), 10)
            assert len(taken) == 1
            assert await _deliverer(engine, http).deliver_due() == 0  # leased: nobody takes it
            alive = _deliverer(engine, http, clock=lambda: later)
            assert await alive.deliver_due() == 1
        assert (await _row(database, event_id))["status"] == "delivered"
    finally:
        await receiver.stop()
