"""The call-events outbox in the records database: leasing, settling, listing, redelivering.

A row is due when it is `pending` (or `provisional`: webhooks/events.py) and its
`next_attempt_at` has come; a `placeholder` is never delivered. An instance takes a due
row by a conditional UPDATE (it must still be due and unleased, or its lease expired): on
PostgreSQL and SQLite alike exactly one instance wins it, so two instances never both deliver
one attempt. The lease outlives the request's timeout; a row whose holder died (SIGKILL) is due
again when its lease expires, for whichever instance is alive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from voiceagent.store.records.schema import webhook_events as t
from voiceagent.webhooks.events import DELIVERED, DUE, FAILED, PENDING, PLACEHOLDER


@dataclass(frozen=True, slots=True)
class Leased:
    """One event taken for one delivery attempt."""

    event_id: str
    url: str
    body: bytes
    attempts: int
    created_at: datetime


def _takeable(now: datetime) -> Any:
    return and_(
        t.c.status.in_(DUE),
        t.c.next_attempt_at <= now,
        or_(t.c.lease_until.is_(None), t.c.lease_until < now),
    )


async def lease_due(
    conn: AsyncConnection, owner: str, now: datetime, until: datetime, limit: int
) -> list[Leased]:
    """Take up to `limit` due events for `owner` until `until` (rows another instance took
    meanwhile are skipped)."""
    query = select(t.c.event_id).where(_takeable(now)).order_by(t.c.next_attempt_at).limit(limit)
    taken: list[Leased] = []
    for event_id in (await conn.execute(query)).scalars().all():
        won = await conn.execute(
            update(t)
            .where(t.c.event_id == event_id, _takeable(now))
            .values(lease_until=until, lease_owner=owner)
        )
        if won.rowcount != 1:
            continue
        row = (
            (
                await conn.execute(
                    select(t.c.url, t.c.body, t.c.attempts, t.c.created_at).where(
                        t.c.event_id == event_id
                    )
                )
            )
            .mappings()
            .one()
        )
        taken.append(
            Leased(event_id, row["url"], row["body"].encode(), row["attempts"], row["created_at"])
        )
    return taken


async def settle(
    conn: AsyncConnection, event: Leased, owner: str, *, status: str,
    next_at: datetime | None, http_status: int | None, error: str | None, now: datetime,
) -> bool:  # fmt: skip
    """Record an attempt's result (only while `owner` still holds the lease): delivered,
    failed, or pending again at `next_at`. False if the lease was lost meanwhile."""
    values: dict[str, Any] = {
        "status": status,
        "attempts": t.c.attempts + 1,
        "lease_until": None,
        "lease_owner": None,
        "last_status": http_status,
        "last_error": (error or "")[:64] or None,
    }
    if next_at is not None:
        values["next_attempt_at"] = next_at
    if status == DELIVERED:
        values["delivered_at"] = now
    result = await conn.execute(
        update(t).where(t.c.event_id == event.event_id, t.c.lease_owner == owner).values(values)
    )
    return bool(result.rowcount == 1)


async def list_events(
    conn: AsyncConnection, *, failed_only: bool = False, call_sid: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:  # fmt: skip
    """The newest events (without bodies), optionally only failed ones or one call's."""
    query = select(
        t.c.event_id, t.c.call_sid, t.c.type, t.c.status, t.c.attempts, t.c.created_at,
        t.c.next_attempt_at, t.c.delivered_at, t.c.last_status, t.c.last_error,
    ).order_by(t.c.created_at.desc()).limit(limit)  # fmt: skip
    if failed_only:
        query = query.where(t.c.status == FAILED)
    if call_sid is not None:
        query = query.where(t.c.call_sid == call_sid)
    return [dict(row) for row in (await conn.execute(query)).mappings().all()]


async def redeliver(conn: AsyncConnection, event_id: str, now: datetime) -> bool:
    """Make an event due again now (a failed or delivered one too); False if unknown (or a
    placeholder: nothing to send yet)."""
    result = await conn.execute(
        update(t)
        .where(t.c.event_id == event_id, t.c.status != PLACEHOLDER)
        .values(
            status=PENDING, next_attempt_at=now, lease_until=None, lease_owner=None, created_at=now
        )
    )
    return bool(result.rowcount == 1)


async def depth(conn: AsyncConnection) -> int:
    """Events still to deliver."""
    count = await conn.execute(select(func.count()).where(t.c.status.in_(DUE)))
    return int(count.scalar_one())
