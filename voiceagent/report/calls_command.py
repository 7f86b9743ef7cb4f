"""`voiceagent calls show CA…` (one call's timeline) and `voiceagent calls list [--since]
[--number] [--outcome]`, read from the records database (DATABASE_URL)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from voiceagent.report.command import parse_since
from voiceagent.report.story import story_lines
from voiceagent.store.records.call_story import list_calls, load_story
from voiceagent.store.records.schema import make_engine, migrate


async def _show(database: str, call_sid: str) -> list[str] | None:
    engine = make_engine(database)
    try:
        await migrate(engine)
        story = await load_story(engine, call_sid)
    finally:
        await engine.dispose()
    return None if story is None else story_lines(story)


async def _list(database: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    since = parse_since(args.since) if args.since else None
    engine = make_engine(database)
    try:
        await migrate(engine)
        return await list_calls(engine, since=since, number=args.number, outcome=args.outcome,
                                limit=args.limit)  # fmt: skip
    finally:
        await engine.dispose()


def cmd_calls(args: argparse.Namespace) -> int:
    from voiceagent.settings import load_settings

    database = args.database or load_settings().database_url
    if not database:
        print("DATABASE_URL is empty: calls are read from the records database", file=sys.stderr)
        return 2
    if args.action == "show":
        lines = asyncio.run(_show(database, args.call_sid))
        if lines is None:
            print(f"no call {args.call_sid} in the records", file=sys.stderr)
            return 1
        print("\n".join(lines))
        return 0
    try:
        rows = asyncio.run(_list(database, args))
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(f"{'call_sid':34}  {'number':13}  {'mode':20}  {'started (UTC)':19}  {'s':>6}  "
          f"{'turns':>5}  outcome")  # fmt: skip
    for r in rows:
        started = r["started_at"].strftime("%Y-%m-%d %H:%M:%S") if r["started_at"] else "-"
        duration = f"{r['duration_s']:.1f}" if r["duration_s"] is not None else "-"
        print(f"{r['call_sid']:34}  {r['number']:13}  {r['mode']:20}  {started:19}  "
              f"{duration:>6}  {r['turns']:5}  {r['end_reason'] or 'in progress'}")  # fmt: skip
    return 0


def add_parser(sub: Any) -> None:
    """Register `voiceagent calls` on the CLI's subparsers."""
    p = sub.add_parser("calls", help="list calls or show one call's whole story")
    p.add_argument("--database", help="records database URL (default: DATABASE_URL)")
    actions = p.add_subparsers(dest="action", required=True)
    show = actions.add_parser("show", help="one call's timeline")
    show.add_argument("call_sid")
    ls = actions.add_parser("list", help="the newest calls")
    ls.add_argument("--since", help="e.g. 1h, 7d or an ISO date")
    ls.add_argument("--number", help="only calls to this number")
    ls.add_argument("--outcome", help="only calls that ended so (e.g. caller_hangup)")
    ls.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_calls)
