"""Outbound outcomes in the report: per number and arm, the dialled calls by final status and
by AMD verdict (the `outbound_calls` records, one per dialled call)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncEngine

from voiceagent.store.records.schema import outbound_calls


@dataclass(frozen=True, slots=True)
class OutboundStats:
    number: str
    arm: str
    dialled: int
    statuses: dict[str, int] = field(default_factory=dict)
    answered_by: dict[str, int] = field(default_factory=dict)


async def load_outbound(
    engine: AsyncEngine, *, since: datetime | None = None, number: str | None = None
) -> list[OutboundStats]:
    """Counts of the outbound calls dialled since ``since`` (from ``number``, if given)."""
    c = outbound_calls.c
    where: list[ColumnElement[bool]] = []
    if since is not None:
        where.append(c.dialled_at >= since)
    if number is not None:
        where.append(c.number == number)
    query = select(c.number, c.arm, c.mode, c.status, c.answered_by).where(*where)
    statuses: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    verdicts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    async with engine.connect() as conn:
        for row in await conn.execute(query):
            key = (row.number, row.arm or row.mode or "-")
            statuses[key][row.status] += 1
            if row.answered_by:
                verdicts[key][row.answered_by] += 1
    return [
        OutboundStats(number, arm, sum(counts.values()), dict(sorted(counts.items())),
                      dict(sorted(verdicts[(number, arm)].items())))
        for (number, arm), counts in sorted(statuses.items())
    ]  # fmt: skip


def outbound_lines(stats: list[OutboundStats], number: str) -> list[str]:
    """``  outbound arm a: 10 dialled: completed 6, no-answer 3, busy 1; answered by ...``."""
    lines = []
    for s in (s for s in stats if s.number == number):
        status = ", ".join(f"{k} {v}" for k, v in s.statuses.items())
        verdict = ", ".join(f"{k} {v}" for k, v in s.answered_by.items()) or "-"
        lines.append(f"  outbound arm {s.arm}: {s.dialled} dialled: {status}; "
                     f"answered by {verdict}")  # fmt: skip
    return lines
