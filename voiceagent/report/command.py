"""`voiceagent report`: read the records, build the report, print it."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from voiceagent.config import Config, load_config
from voiceagent.e164 import E164, e164_problem
from voiceagent.errors import ConfigError
from voiceagent.report.arms import experiment_weights
from voiceagent.report.outbound import load_outbound
from voiceagent.report.page import html_report
from voiceagent.report.render import render
from voiceagent.report.stats import Report, build_report
from voiceagent.store.records.reading import load_rows
from voiceagent.store.records.schema import async_url, make_engine, migrate

_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`1h`, `30m`, `7d`, `2w` (ago), or an ISO date/time (UTC unless it says otherwise)."""
    now = now or datetime.now(UTC)
    match = _RELATIVE.match(text.strip())
    if match:
        try:
            return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
        except OverflowError as exc:
            raise ValueError(f"--since: {text!r} reaches back too far") from exc
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"--since: {text!r} is neither like 1h/7d nor an ISO date") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def load_report(
    database: str | AsyncEngine,
    *,
    since: datetime | None = None,
    number: str | None = None,
    config: Config | None = None,
    **options: Any,
) -> Report:
    """Read the records (migrating an empty database first) and build the report; with
    `config`, the sample ratio check uses its weights."""
    engine = make_engine(database) if isinstance(database, str) else database
    try:
        await migrate(engine)
        calls, turns = await load_rows(engine, since=since, number=number)
        outbound = await load_outbound(engine, since=since, number=number)
    finally:
        if isinstance(database, str):
            await engine.dispose()
    weights = experiment_weights(config) if config is not None else None
    report = build_report(calls, turns, since=since, weights=weights, **options)
    return replace(report, outbound=outbound)


def _missing_sqlite(url: str) -> Path | None:
    """The SQLite file a URL names, if it does not exist (the report does not create one)."""
    url = async_url(url)
    prefix = "sqlite+aiosqlite:///"
    if not url.startswith(prefix) or ":memory:" in url:
        return None
    path = Path(url.removeprefix(prefix).split("?", 1)[0])
    return None if path.exists() else path


def records_url(database_url: str | None) -> str | None:
    """The records database (`--database-url` or DATABASE_URL); None (said on stderr) when it
    is a SQLite file that does not exist: the report does not create one."""
    from voiceagent.settings import load_settings

    url = database_url or load_settings().database_url
    missing = _missing_sqlite(url)
    if missing is not None:
        print(f"no records yet: {missing} does not exist (DATABASE_URL={url})", file=sys.stderr)
        return None
    return url


def cmd_report(args: argparse.Namespace) -> int:
    from voiceagent.logging import configure_logging

    configure_logging("warning")  # logs go to stderr; stdout is the report
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.number is not None and not E164.match(args.number):
        print(f"--number: {e164_problem(args.number)}", file=sys.stderr)
        return 2
    url = records_url(args.database_url)
    if url is None:
        return 1
    config = config_or_none(args.config)
    if args.format == "html":
        page = html_report(url, since=since, number=args.number, config=config,
                           source=_source(url))  # fmt: skip
        text = asyncio.run(page)
    else:
        report = load_report(url, since=since, number=args.number, config=config)
        text = render(asyncio.run(report), args.format)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        print(args.output.resolve())
    return 0


def config_or_none(path: Path | str | None, *, quiet: bool = True) -> Config | None:
    """The per-number config, to name what each experiment arm changes and check its weights;
    None (and a note on stderr) if it cannot be read: the report still works without it."""
    from voiceagent.settings import load_settings

    try:
        return load_config(Path(path) if path else load_settings().config_path)
    except ConfigError as exc:
        lead = "arm settings and weights left out" if quiet else "cannot read the config"
        print(f"{lead}: {exc}", file=sys.stderr)
        return None


def _source(url: str) -> str:
    """The database, named without its password."""
    return make_url(async_url(url)).render_as_string(hide_password=True)


def add_parser(sub: Any) -> None:
    """Register `voiceagent report` on the CLI's subparsers."""
    p = sub.add_parser("report", help="latency per number and arm, and which arm is faster")
    p.add_argument("--since", help="only calls since: 1h, 30m, 7d, 2w or an ISO date/time")
    p.add_argument("--number", help="only calls to this number (E.164)")
    p.add_argument("--format", choices=("table", "json", "csv", "html"), default="table",
                   help="html: one self-contained page with charts, works offline")  # fmt: skip
    p.add_argument("-o", "--output", type=Path, help="write to this file (default: stdout)")
    p.add_argument("--database-url", help="records database (default: DATABASE_URL)")
    p.add_argument(
        "--config", type=Path, help="per-number YAML: what each arm changes (VOICEAGENT_CONFIG)"
    )
    p.set_defaults(func=cmd_report)
