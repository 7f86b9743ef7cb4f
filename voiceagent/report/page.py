"""The HTML report from a records database: read (async), then build (CPU: run it in a thread
on a server), then render. Used by `voiceagent report --format html`, `voiceagent simulate`
and the live `/dashboard`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from voiceagent.config import Config
from voiceagent.report.arms import arm_settings, experiment_weights
from voiceagent.report.details import Details, load_details, load_texts
from voiceagent.report.experiments import experiment_statuses
from voiceagent.report.figures import Texts, page_data, slowest_everywhere
from voiceagent.report.html import render_html
from voiceagent.report.outbound import OutboundStats, load_outbound
from voiceagent.report.stats import build_report
from voiceagent.store.records.schema import make_engine, migrate


@dataclass(frozen=True, slots=True)
class Records:
    """What the page is made from: the calls and turns, the slowest calls' transcripts and
    the outbound calls' outcomes."""

    details: Details
    texts: Texts
    since: datetime | None = None
    outbound: list[OutboundStats] = field(default_factory=list)


async def load_records(
    database: str | AsyncEngine,
    *,
    since: datetime | None = None,
    number: str | None = None,
    run_migrations: bool = True,
) -> Records:
    """Read the records (migrating an empty database first, unless told not to)."""
    engine = make_engine(database) if isinstance(database, str) else database
    try:
        if run_migrations:
            await migrate(engine)
        details = await load_details(engine, since=since, number=number)
        texts = await load_texts(engine, slowest_everywhere(details))
        outbound = await load_outbound(engine, since=since, number=number)
    finally:
        if isinstance(database, str):
            await engine.dispose()
    return Records(details, texts, since, outbound)


def build_page(
    records: Records,
    *,
    config: Config | None = None,
    source: str = "",
    simulated: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """The page's data: statistics (`options` go to `build_report`), chart data and, with
    `config`, what each experiment arm changes and each experiment's state (shown at the top).
    `simulated`: the records come from `voiceagent simulate` (the page says so in a banner).
    CPU-bound for large databases."""
    weights = experiment_weights(config) if config is not None else None
    report = build_report(*records.details.rows(), since=records.since, weights=weights,
                          **options)  # fmt: skip
    report = replace(report, outbound=records.outbound)
    numbers = dict.fromkeys(a.number for a in report.arms)
    settings = {n: arm_settings(config, n) for n in numbers} if config is not None else {}
    data = page_data(report, records.details, settings=settings, texts=records.texts,
                     generated_at=datetime.now(UTC), source=source)  # fmt: skip
    statuses = experiment_statuses(report, config) if config is not None else []
    data["experiments"] = [asdict(s) for s in statuses]
    data["simulated"] = simulated
    return data


async def html_report(
    database: str | AsyncEngine,
    *,
    since: datetime | None = None,
    number: str | None = None,
    config: Config | None = None,
    source: str = "",
    simulated: bool = False,
    **options: Any,
) -> str:
    """The whole page for a database, in one call (the CLI and the rehearsal); `options` go
    to `build_report` (`min_turns`, `min_calls`, ...)."""
    records = await load_records(database, since=since, number=number)
    page = build_page(records, config=config, source=source, simulated=simulated, **options)
    return render_html(page)
