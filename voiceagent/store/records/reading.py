"""Reading call and turn records back for the report (the writer is `records.py`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, select
from sqlalchemy.ext.asyncio import AsyncEngine

from voiceagent.session.call import CallSession
from voiceagent.store.records.schema import FIGURES, calls, turns


@dataclass(frozen=True, slots=True)
class CallRow:
    """One call as the report sees it; `mode` is the arm's mode (before any failover)."""

    call_sid: str
    number: str
    arm: str | None
    mode: str
    failover_from: str | None = None
    end_reason: str | None = None
    started_at: datetime | None = None
    # What the report's guardrails read (see report/guardrails.py).
    upstream_failure: str | None = None
    ended_by: str | None = None
    transfer: str | None = None
    duration_s: float | None = None
    agent_turns: int = 0  # the `turns` counter: agent turns started
    barge_ins: int = 0
    tool_calls: int = 0
    tool_errors: int = 0


@dataclass(frozen=True, slots=True)
class TurnRow:
    """One finished agent turn: its call and latency figures (milliseconds, None if absent)."""

    call_sid: str
    kind: str
    figures: Mapping[str, float | None]
    mode: str = ""  # the mode that served this turn (differs from the arm's after failover)


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def call_filter(since: datetime | None, number: str | None) -> list[ColumnElement[bool]]:
    """WHERE clauses: calls started since `since`, to `number` (each only if given)."""
    where: list[ColumnElement[bool]] = []
    if since is not None:
        where.append(calls.c.started_at >= since)
    if number is not None:
        where.append(calls.c.number == number)
    return where


async def load_rows(
    engine: AsyncEngine, *, since: datetime | None = None, number: str | None = None
) -> tuple[list[CallRow], list[TurnRow]]:
    """The calls started since `since` (to `number`, if given) and all their turns."""
    where = call_filter(since, number)
    call_query = select(calls).where(*where).order_by(calls.c.started_at)
    turn_query = (
        select(turns.c.call_sid, turns.c.kind, turns.c.mode, *(turns.c[f] for f in FIGURES))
        .join(calls, calls.c.call_sid == turns.c.call_sid)
        .where(*where)
        .order_by(turns.c.id)
    )
    async with engine.connect() as conn:
        call_rows = [call_row_of(r) for r in await conn.execute(call_query)]
        turn_rows = [
            TurnRow(r.call_sid, r.kind, {f: getattr(r, f) for f in FIGURES}, r.mode)
            for r in await conn.execute(turn_query)
        ]
    return call_rows, turn_rows


def call_row_of(r: Row[Any]) -> CallRow:
    """The CallRow of one `calls` row."""
    return CallRow(
        call_sid=r.call_sid,
        number=r.number,
        arm=r.arm,
        mode=r.failover_from or r.mode,
        failover_from=r.failover_from,
        end_reason=r.end_reason,
        started_at=_utc(r.started_at),
        upstream_failure=r.upstream_failure,
        ended_by=r.ended_by,
        transfer=r.transfer,
        duration_s=r.duration_s,
        agent_turns=r.turns,
        barge_ins=r.barge_ins,
        tool_calls=r.tool_calls,
        tool_errors=r.tool_errors,
    )


def rows_from_sessions(sessions: Iterable[CallSession]) -> tuple[list[CallRow], list[TurnRow]]:
    """Report rows straight from ended CallSessions (a rehearsal needs no database). A
    failover leg (same CallSid) joins its call: the call keeps its first leg's arm and mode."""
    call_rows: dict[str, CallRow] = {}
    turn_rows: list[TurnRow] = []
    for s in sessions:
        first = call_rows.get(s.call_sid)
        c = s.counters
        call_rows[s.call_sid] = CallRow(
            call_sid=s.call_sid,
            number=s.number,
            arm=first.arm if first else s.arm,
            mode=first.mode if first else (s.failover_from or s.mode),
            failover_from=s.failover_from or (first.failover_from if first else None),
            end_reason=s.end_reason.value if s.end_reason else None,
            started_at=first.started_at if first else datetime.fromtimestamp(s.started_wall, UTC),
            upstream_failure=s.upstream_failure or (first.upstream_failure if first else None),
            ended_by=s.ended_by,
            transfer=s.transfer,
            duration_s=s.duration_s + ((first.duration_s or 0.0) if first else 0.0),
            agent_turns=c.turns + (first.agent_turns if first else 0),
            barge_ins=c.barge_ins + (first.barge_ins if first else 0),
            tool_calls=c.tool_calls + (first.tool_calls if first else 0),
            tool_errors=c.tool_errors + (first.tool_errors if first else 0),
        )
        turn_rows += [TurnRow(s.call_sid, t.kind, t.figures(), s.mode) for t in s.latency.turns]
    return list(call_rows.values()), turn_rows
