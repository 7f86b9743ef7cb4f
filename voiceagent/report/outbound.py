"""Outbound outcomes in the report: per number and arm, the dialled calls by final status and
by AMD verdict (the `outbound_calls` records, one per dialled call), with the shares of the
dialled calls that were answered, reached a person and reached voicemail. The table report,
its JSON and the HTML page (and dashboard) all show these figures."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncEngine

from voiceagent.outbound.legs import MACHINE
from voiceagent.store.records.schema import outbound_calls

# Columns in this order (Twilio's final statuses, AMD's verdicts); a value recorded outside
# them (none today) is shown after them.
STATUSES = ("completed", "no-answer", "busy", "failed", "canceled")
VERDICTS = ("human", "machine_start", "machine_end_beep", "machine_end_silence",
            "machine_end_other", "fax", "unknown")  # fmt: skip


@dataclass(frozen=True, slots=True)
class OutboundStats:
    number: str
    arm: str
    dialled: int
    statuses: dict[str, int] = field(default_factory=dict)
    answered_by: dict[str, int] = field(default_factory=dict)

    @property
    def voicemail(self) -> int:
        """Calls AMD judged a machine (the voicemail leg, or a hang-up by policy)."""
        return sum(n for verdict, n in self.answered_by.items() if verdict in MACHINE)

    @property
    def no_verdict(self) -> int:
        """Calls without an AMD verdict: not answered, or AMD off for the number."""
        return self.dialled - sum(self.answered_by.values())

    def rates(self) -> dict[str, float | None]:
        """Shares of the dialled calls: answered (`completed`), a person, voicemail."""
        people = self.answered_by.get("human", 0)
        counts = {"answered": self.statuses.get("completed", 0), "person": people,
                  "voicemail": self.voicemail}  # fmt: skip
        return {k: round(n / self.dialled, 4) if self.dialled else None for k, n in counts.items()}


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


def outbound_json(stats: OutboundStats) -> dict[str, Any]:
    """One number and arm's outcomes, JSON-ready (the JSON report and the HTML page)."""
    return {**asdict(stats), "voicemail": stats.voicemail, "no_verdict": stats.no_verdict,
            "rates": stats.rates()}  # fmt: skip


def outbound_section(stats: Sequence[OutboundStats], number: str) -> dict[str, Any] | None:
    """`number`'s outbound table for the page: its columns (every final status, the verdicts
    recorded) and a row per arm; None when the number dialled nothing."""
    rows = [s for s in stats if s.number == number]
    if not rows:
        return None
    seen = {k for s in rows for k in s.statuses}, {k for s in rows for k in s.answered_by}
    statuses = [*STATUSES, *sorted(seen[0] - set(STATUSES))]
    verdicts = [v for v in VERDICTS if v in seen[1]] + sorted(seen[1] - set(VERDICTS))
    return {"statuses": statuses, "answered_by": verdicts,
            "arms": [outbound_json(s) for s in rows]}  # fmt: skip
