"""`voiceagent webhooks list [--failed]` and `voiceagent webhooks redeliver ID`: operate the
call-events outbox in the records database (DATABASE_URL). A running server picks a
redelivered event up at its next look (WEBHOOK_POLL_SECONDS)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

from voiceagent.store.records.schema import make_engine, migrate
from voiceagent.webhooks.outbox import list_events, redeliver


async def outbox_events(
    database: str, *, failed_only: bool = False, call_sid: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest outbox events (without their bodies)."""
    engine = make_engine(database)
    try:
        await migrate(engine)
        async with engine.connect() as conn:
            return await list_events(conn, failed_only=failed_only, call_sid=call_sid, limit=limit)
    finally:
        await engine.dispose()


async def redeliver_event(database: str, event_id: str) -> bool:
    """Make one event due again now; False if there is no such event."""
    engine = make_engine(database)
    try:
        async with engine.begin() as conn:
            return await redeliver(conn, event_id, datetime.now(UTC))
    finally:
        await engine.dispose()


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def cmd_webhooks(args: argparse.Namespace) -> int:
    from voiceagent.settings import load_settings

    database = args.database or load_settings().database_url
    if not database:
        print("DATABASE_URL is empty: the outbox lives in the records database", file=sys.stderr)
        return 2
    if args.action == "redeliver":
        if not asyncio.run(redeliver_event(database, args.id)):
            print(f"no event {args.id}", file=sys.stderr)
            return 1
        print(f"{args.id}: due again now")
        return 0
    rows = asyncio.run(outbox_events(database, failed_only=args.failed, limit=args.limit))
    print(f"{'event_id':38}  {'type':20}  {'call_sid':34}  {'status':9}  tries  last      "
          f"created              next/delivered")  # fmt: skip
    for r in rows:
        last = str(r["last_status"] or r["last_error"] or "-")[:8]
        later = r["delivered_at"] if r["status"] == "delivered" else r["next_attempt_at"]
        created = _when(r["created_at"])
        print(f"{r['event_id']:38}  {r['type']:20}  {r['call_sid']:34}  {r['status']:9}  "
              f"{r['attempts']:5}  {last:8}  {created:19}  {_when(later)}")  # fmt: skip
    return 0


def add_parser(sub: Any) -> None:
    """Register `voiceagent webhooks` on the CLI's subparsers."""
    p = sub.add_parser("webhooks", help="list or redeliver call events (the outbox)")
    p.add_argument("--database", help="records database URL (default: DATABASE_URL)")
    actions = p.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="the newest events")
    ls.add_argument("--failed", action="store_true", help="only events given up on")
    ls.add_argument("--limit", type=int, default=50)
    again = actions.add_parser("redeliver", help="send an event again now")
    again.add_argument("id", help="the event id (evt_...)")
    p.set_defaults(func=cmd_webhooks)
