"""One call's whole story read back from the records: its row, its turns, its webhook events
(`voiceagent calls show`, `/dashboard/calls/<CallSid>`), and the list of recent calls."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from voiceagent.store.records.schema import calls, turns, webhook_events


def _utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # SQLite hands back naive datetimes; all are UTC
    return value


def _row(mapping: Any) -> dict[str, Any]:
    return {key: _utc(value) for key, value in dict(mapping).items()}


async def load_story(engine: AsyncEngine, call_sid: str) -> dict[str, Any] | None:
    """The call's row, its turns in order and its webhook events (None: no such call)."""
    async with engine.connect() as conn:
        found = await conn.execute(select(calls).where(calls.c.call_sid == call_sid))
        call = found.mappings().first()
        if call is None:
            return None
        turn_rows = await conn.execute(
            select(turns).where(turns.c.call_sid == call_sid).order_by(turns.c.id)
        )
        event_rows = await conn.execute(
            select(webhook_events)
            .where(webhook_events.c.call_sid == call_sid)
            .order_by(webhook_events.c.created_at)
        )
        events = [_row(e) for e in event_rows.mappings().all()]
        story = {"call": _row(call), "turns": [_row(t) for t in turn_rows.mappings().all()]}
    for event in events:
        body = event.pop("body", "")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            payload = {}
        event["variables"] = payload.get("variables") or {}
        event["recording_url"] = payload.get("recording_url")
        event["tool_calls"] = payload.get("tool_calls") or []
    story["events"] = events
    return story


async def list_calls(
    engine: AsyncEngine, *, since: datetime | None = None, number: str | None = None,
    outcome: str | None = None, limit: int = 50,
) -> list[dict[str, Any]]:  # fmt: skip
    """The newest calls (started since `since`, to `number`, ended with `outcome`)."""
    c = calls.c
    query = select(
        c.call_sid, c.number, c.mode, c.arm, c.started_at, c.duration_s, c.end_reason,
        c.ended_by, c.turns, c.failover_from, c.transfer,
    ).order_by(c.started_at.desc()).limit(limit)  # fmt: skip
    if since is not None:
        query = query.where(c.started_at >= since)
    if number is not None:
        query = query.where(c.number == number)
    if outcome is not None:
        query = query.where(c.end_reason == outcome)
    async with engine.connect() as conn:
        return [_row(r) for r in (await conn.execute(query)).mappings().all()]
