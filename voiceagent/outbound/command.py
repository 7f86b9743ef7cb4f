"""`voiceagent call`: place outbound calls through a running server (`POST /calls`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from voiceagent.outbound.batch import BatchRun, parse_rate, progress_line, read_rows
from voiceagent.outbound.client import CallsClient, outcome_of

EXAMPLES = """\
examples:
  # one call; prints the CallSid
  voiceagent call --from +18005550100 --to +14155550123 --var name=Ana

  # one call, followed to its end (status changes, answered by, outcome)
  voiceagent call --from +18005550100 --to +14155550123 --var name=Ana --wait

  # a batch: one call per row of people.csv (a 'to' column; the others become variables),
  # 1 call per second, at most 5 at once, one result row per call in results.csv
  voiceagent call --from +18005550100 --csv people.csv --rate 1/s --max-concurrent 5 \\
      -o results.csv

  # Ctrl-C stops dialling and lets the calls in progress finish (twice: quit at once);
  # the same command again skips the rows results.csv already has.

The server (voiceagent serve) places the calls: it must have ADMIN_TOKEN and the Twilio REST
settings (TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN or an API key pair), and the --from number
needs `outbound:` settings in the YAML. See docs/outbound.md.
"""


def add_parser(sub: Any) -> None:
    """Register `voiceagent call` on the CLI's subparsers."""
    p = sub.add_parser(
        "call", help="place outbound calls (one, or a CSV batch) through a running server",
        description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument(
        "--from",
        dest="from_",
        required=True,
        metavar="NUMBER",
        help="a configured number with outbound: settings (E.164)",
    )
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", metavar="NUMBER", help="the number to call (E.164)")
    target.add_argument("--csv", type=Path, help="a CSV with a 'to' column: one call per row")
    p.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a call variable ({{key}} in the agent's texts); repeatable",
    )
    p.add_argument("--wait", action="store_true", help="follow the call to its end")
    p.add_argument("--rate", default="1/s", help="batch dial rate (1/s, 30/m; default 1/s)")
    p.add_argument("--max-concurrent", type=int, default=5, help="batch calls at once (5)")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        help="batch results CSV (default: "
        "<csv>.results.csv); rerunning with it skips rows already done",
    )
    p.add_argument("--url", help="server base URL (default: http://127.0.0.1:$PORT)")
    p.add_argument("--token", help=argparse.SUPPRESS)  # tests; normally ADMIN_TOKEN
    p.set_defaults(func=cmd_call)  # fmt: skip


def _variables(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--var wants KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def cmd_call(args: argparse.Namespace) -> int:
    from voiceagent.reload import admin_endpoint

    endpoint = admin_endpoint(args)
    if endpoint is None:
        return 2
    url, token = endpoint
    try:
        variables = _variables(args.var)
        if args.csv is not None:
            return asyncio.run(_batch(args, url, token))
        return asyncio.run(_single(args, url, token, variables))
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (aiohttp.ClientError, OSError) as exc:
        print(f"cannot reach {url}: {exc}", file=sys.stderr)
        return 2


async def _single(args: argparse.Namespace, url: str, token: str, variables: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as http:
        client = CallsClient(http, url, token)
        placed = await client.place(args.from_, args.to, variables)
        if not placed.call_sid:
            print(f"refused ({placed.error}): {placed.message}", file=sys.stderr)
            return 1
        print(placed.call_sid, flush=True)
        if not args.wait:
            return 0

        def changed(call: dict[str, Any]) -> None:
            verdict = f" (answered by {call['answered_by']})" if call.get("answered_by") else ""
            print(f"  {call.get('status')}{verdict}", flush=True)

        call = await client.follow(placed.call_sid, on_change=changed)
        duration = call.get("duration_s")
        print(f"outcome: {outcome_of(call)}" + (f", {duration} s" if duration else ""))
        return 0 if call.get("status") == "completed" else 1


async def _batch(args: argparse.Namespace, url: str, token: str) -> int:
    rows = read_rows(args.csv)
    output = args.output or args.csv.with_suffix(".results.csv")
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http:
        run = BatchRun(CallsClient(http, url, token), args.from_, output,
                       rate=parse_rate(args.rate), max_concurrent=max(1, args.max_concurrent),
                       on_progress=_show)  # fmt: skip
        task = asyncio.current_task()

        def interrupted() -> None:
            if run.stopping and task is not None:
                task.cancel()  # the second Ctrl-C: quit now
            run.stop()
            _show(run)

        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGINT, interrupted)
        try:
            counts = await run.run(rows)
        except asyncio.CancelledError:
            print("\nstopped; calls still in progress are not in the results", file=sys.stderr)
            return 130
        finally:
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(signal.SIGINT)
    print()
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing to do"
    print(f"{sum(counts.values())} calls ({summary}); {run.skipped} rows already done; "
          f"results: {output}")  # fmt: skip
    return 0


def _show(run: BatchRun) -> None:
    print("\r" + progress_line(run), end="", flush=True, file=sys.stderr)
