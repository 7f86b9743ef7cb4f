"""The records the HTML report draws: `store.reading`'s rows plus what the charts need besides
(turn times and order, barge-ins, failures, upstream errors), read in one pass.

`load_details` reads the same calls and turns as `store.reading.load_rows` (same filters),
and hands out its `CallRow`s and `TurnRow`s for the statistics, so the table, JSON and HTML
reports agree. Transcripts are read only for the few calls the page shows (`load_texts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncEngine

from voiceagent.store.records.reading import CallRow, TurnRow, call_filter, call_row_of
from voiceagent.store.records.schema import FIGURES, calls, turns


@dataclass(frozen=True, slots=True)
class CallDetail:
    """A call as the statistics see it (`row`) and what its outcome chart needs."""

    row: CallRow
    upstream_failure: str | None = None
    upstream_errors: int = 0
    barge_ins: int = 0


@dataclass(frozen=True, slots=True)
class TurnDetail:
    """A turn as the statistics see it (`row`), with its time and place in the call."""

    row: TurnRow
    index: int
    at: datetime
    interrupted: bool = False
    failed: str | None = None


@dataclass(frozen=True, slots=True)
class Details:
    calls: list[CallDetail]
    turns: list[TurnDetail]

    def rows(self) -> tuple[list[CallRow], list[TurnRow]]:
        """The rows `build_report` takes."""
        return [c.row for c in self.calls], [t.row for t in self.turns]


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def load_details(
    engine: AsyncEngine, *, since: datetime | None = None, number: str | None = None
) -> Details:
    """The calls started since `since` (to `number`, if given) and all their turns."""
    where = call_filter(since, number)
    call_query = select(calls).where(*where).order_by(calls.c.started_at)
    turn_query = (
        select(turns.c.call_sid, turns.c.kind, turns.c.mode, turns.c.turn_index, turns.c.at,
               turns.c.interrupted, turns.c.failed, *(turns.c[f] for f in FIGURES))
        .join(calls, calls.c.call_sid == turns.c.call_sid)
        .where(*where)
        .order_by(turns.c.id)
    )  # fmt: skip
    async with engine.connect() as conn:
        call_details = [_call(r) for r in await conn.execute(call_query)]
        turn_details = [_turn(r) for r in await conn.execute(turn_query)]
    return Details(call_details, turn_details)


def _call(r: Row[Any]) -> CallDetail:
    return CallDetail(call_row_of(r), r.upstream_failure, r.upstream_errors, r.barge_ins)


def _turn(r: Row[Any]) -> TurnDetail:
    row = TurnRow(r.call_sid, r.kind, {f: getattr(r, f) for f in FIGURES}, r.mode)
    return TurnDetail(row, r.turn_index, _utc(r.at), bool(r.interrupted), r.failed)


async def load_texts(
    engine: AsyncEngine, call_sids: Sequence[str]
) -> dict[tuple[str, int], tuple[str | None, str | None]]:
    """(call_sid, turn_index) → (caller text, agent text), for turns that recorded them."""
    if not call_sids:
        return {}
    query = select(
        turns.c.call_sid, turns.c.turn_index, turns.c.user_text, turns.c.agent_text
    ).where(turns.c.call_sid.in_(list(call_sids)))
    async with engine.connect() as conn:
        return {
            (r.call_sid, r.turn_index): (r.user_text, r.agent_text)
            for r in await conn.execute(query)
            if r.user_text is not None or r.agent_text is not None
        }
