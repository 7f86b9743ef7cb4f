"""`voiceagent sign`: send one incoming-call webhook signed as Twilio signs it, for a local check.

The request is signed with TWILIO_AUTH_TOKEN over PUBLIC_URL + path (what Twilio signs) and sent
to the server's local address. A 200 with TwiML means the token, PUBLIC_URL and the number's
config line up; a 403 means the server checked a different URL or holds another token (its
`signature_rejected` log line names the URL it checked and the forwarding headers it saw).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import aiohttp

from voiceagent.e164 import E164, e164_problem
from voiceagent.errors import ConfigError
from voiceagent.sim.webhooks import SimTarget, Webhooks, call_form, new_sid

TEST_CALLER = "+15005550006"  # Twilio's magic "valid number" for tests


def cmd_sign(args: argparse.Namespace) -> int:
    from voiceagent.config import load_config
    from voiceagent.settings import load_settings

    try:
        settings = load_settings()
        to = args.to or next(iter(sorted(load_config(settings.config_path).numbers)), None)
    except ConfigError as exc:
        print(f"invalid configuration: {exc}", file=sys.stderr)
        return 2
    for number in (to, args.from_):
        if number is None or not E164.match(number):
            problem = e164_problem(number) if number else "no number configured"
            print(f"--to/--from: {problem}", file=sys.stderr)
            return 2
    if not settings.twilio_auth_token:
        print("TWILIO_AUTH_TOKEN is empty: nothing to sign with", file=sys.stderr)
        return 2
    assert to is not None
    local = (args.url or f"http://127.0.0.1:{settings.port}").rstrip("/")
    target = SimTarget(local, settings.public_url, settings.twilio_auth_token)
    form = call_form(new_sid("CA"), to, args.from_, "AC" + "0" * 32)
    public = target.public(args.path)
    print(f"POST {public} (sent to {target.local(public)}), To={to}, signed with TWILIO_AUTH_TOKEN")
    try:
        status, body = asyncio.run(_send(target, form, public))
    except (aiohttp.ClientError, OSError) as exc:
        print(f"cannot reach {local}: {exc}", file=sys.stderr)
        return 2
    print(f"{status}\n{body}")
    if status == 403:
        print(
            "signature rejected: the server holds another TWILIO_AUTH_TOKEN or PUBLIC_URL than "
            "this shell; its signature_rejected log line shows the URL it checked",
            file=sys.stderr,
        )
    return 0 if 200 <= status < 300 else 1


async def _send(target: SimTarget, form: dict[str, str], public: str) -> tuple[int, str]:
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        return await Webhooks(target, http, form).post(public, form)


def add_parser(sub: Any) -> None:
    """Register `voiceagent sign` on the CLI's subparsers."""
    p = sub.add_parser("sign", help="send a webhook signed as Twilio would, to check a server")
    p.add_argument("--url", help="where the server listens (default: http://127.0.0.1:$PORT)")
    p.add_argument("--path", default="/voice", help="webhook path (default /voice)")
    p.add_argument("--to", help="the called number (default: the config's first number)")
    p.add_argument("--from", dest="from_", default=TEST_CALLER,
                   help=f"the caller's number (default {TEST_CALLER})")  # fmt: skip
    p.set_defaults(func=cmd_sign)
