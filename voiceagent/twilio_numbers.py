"""`voiceagent twilio numbers [--apply]`: point the account's numbers at this server.

Lists each configured number as Twilio has it (voice URL, method, fallback URL, status
callback) beside what the config and PUBLIC_URL need: calls to a configured number must be
POSTed to `PUBLIC_URL/voice`; the fallback URL is yours to choose, but not this server (a
fallback is what Twilio calls when this server fails or drains). `--apply` sets what differs
through the REST API (`transport/twilio_rest.py`). Configured numbers the account does not
own, and owned numbers whose voice URL points here but that are not configured, are named.

`review` is pure (the account's numbers in, a `Review` out); the command does the I/O.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from voiceagent.config import Config, load_config
from voiceagent.errors import ConfigError, TwilioApiError
from voiceagent.settings import load_settings
from voiceagent.transport.twilio_rest import (
    NumberInfo,
    NumberUpdate,
    TwilioRest,
    TwilioRestClient,
    credentials_from,
)

VOICE_PATH = "/voice"


@dataclass(frozen=True, slots=True)
class Wanted:
    """What a configured number's voice configuration should be (None: leave it as it is)."""

    voice_url: str
    voice_method: str = "POST"
    voice_fallback_url: str | None = None
    status_callback: str | None = None


@dataclass(frozen=True, slots=True)
class NumberReview:
    """One configured number the account owns: as Twilio has it, the update it needs, and
    notes on what is the operator's to decide."""

    have: NumberInfo
    update: NumberUpdate
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.update == NumberUpdate()


@dataclass
class Review:
    """The whole account against the config."""

    numbers: list[NumberReview] = field(default_factory=list)
    not_owned: list[str] = field(default_factory=list)  # configured, not the account's
    stray: list[NumberInfo] = field(default_factory=list)  # points here, not configured
    unknown_policy: str = "refuse"  # what the server does with the stray numbers' calls


def _here(url: str, public_url: str) -> bool:
    """Whether ``url`` is on this server (same scheme-less host and port as PUBLIC_URL)."""
    return bool(url) and urlsplit(url).netloc.lower() == urlsplit(public_url).netloc.lower()


def review(config: Config, owned: list[NumberInfo], public_url: str, wanted: Wanted) -> Review:
    """Compare the account's numbers with the config's; see the module docstring."""
    out = Review(unknown_policy=config.unknown_numbers.policy)
    by_number = {n.phone_number: n for n in owned}
    for number in sorted(config.numbers):
        have = by_number.get(number)
        if have is None:
            out.not_owned.append(number)
            continue
        changes: dict[str, str] = {}
        if have.voice_url != wanted.voice_url:
            changes["voice_url"] = wanted.voice_url
        if have.voice_method.upper() != wanted.voice_method:
            changes["voice_method"] = wanted.voice_method
        fallback = wanted.voice_fallback_url
        if fallback is not None and have.voice_fallback_url != fallback:
            changes["voice_fallback_url"] = fallback
        if wanted.status_callback is not None and have.status_callback != wanted.status_callback:
            changes["status_callback"] = wanted.status_callback
        notes = []
        fallback = changes.get("voice_fallback_url", have.voice_fallback_url)
        if not fallback:
            notes.append("no fallback URL: while this server drains or fails, callers hear "
                         "Twilio's error message (set one with --fallback-url)")  # fmt: skip
        elif _here(fallback, public_url):
            notes.append("the fallback URL is this server: it fails when this server does")
        out.numbers.append(NumberReview(have, NumberUpdate(**changes), tuple(notes)))
    out.stray = [
        n for n in owned if n.phone_number not in config.numbers and _here(n.voice_url, public_url)
    ]
    return out


def _show(value: str) -> str:
    return value or "(none)"


def render(result: Review, public_url: str, applied: bool) -> list[str]:
    """The table a person reads: each number's fields, have → need, and what is wrong."""
    lines: list[str] = []
    for item in result.numbers:
        state = "ok" if item.ok else ("updated" if applied else "needs changes")
        lines.append(f"{item.have.phone_number}  {item.have.sid}  {state}")
        for label, name in (("voice URL", "voice_url"), ("voice method", "voice_method"),
                            ("fallback URL", "voice_fallback_url"),
                            ("status callback", "status_callback")):  # fmt: skip
            have = str(getattr(item.have, name))
            need = getattr(item.update, name)
            arrow = f"  ->  {need}" if need is not None else ""
            lines.append(f"  {label:16} {_show(have)}{arrow}")
        lines.extend(f"  note: {note}" for note in item.notes)
    for number in result.not_owned:
        lines.append(f"{number}  not a number of this Twilio account: its calls never come here")
    for stray in result.stray:
        lines.append(
            f"{stray.phone_number}  {stray.sid}  points at {public_url} but is not in the "
            f"config: its calls get unknown_numbers: {result.unknown_policy}"
        )
    return lines


async def run(args: argparse.Namespace, rest: TwilioRest | None = None) -> int:
    """The command; ``rest`` defaults to the real client from the settings."""
    try:
        settings = load_settings()
        config = load_config(Path(args.config) if args.config else settings.config_path)
        client = rest or TwilioRestClient(credentials_from(settings))
    except ConfigError as exc:
        print(f"voiceagent twilio numbers: {exc}", file=sys.stderr)
        return 2
    wanted = Wanted(settings.public_url + VOICE_PATH, "POST", args.fallback_url,
                    args.status_callback)  # fmt: skip
    try:
        result = review(config, await client.list_numbers(), settings.public_url, wanted)
        if args.apply:
            for item in result.numbers:
                if not item.ok:
                    await client.update_number(item.have.sid, item.update)
    except TwilioApiError as exc:
        print(f"voiceagent twilio numbers: {exc}", file=sys.stderr)
        return 2
    finally:
        await client.close()
    print(f"Twilio account {settings.twilio_account_sid}; calls must reach {wanted.voice_url}")
    print("\n".join(render(result, settings.public_url, args.apply)))
    pending = not args.apply and any(not n.ok for n in result.numbers)
    if pending:
        print("run again with --apply to set what differs")
    return 1 if pending or result.not_owned else 0


def _url(value: str) -> str:
    """An absolute http(s) URL, as Twilio accepts for a number's fallback and callback."""
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"{value!r} is not an absolute https:// URL")
    return value


def add_parser(sub: Any) -> None:
    """Register `voiceagent twilio numbers` on the CLI."""
    twilio = sub.add_parser("twilio", help="manage the Twilio account through its REST API")
    verbs = twilio.add_subparsers(dest="twilio_command", required=True)
    p = verbs.add_parser(
        "numbers",
        help="compare the account's numbers with the config and PUBLIC_URL (--apply: set them)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("--config", help="per-number YAML (default: VOICEAGENT_CONFIG)")
    p.add_argument("--apply", action="store_true", help="set each number's webhook as needed")
    p.add_argument("--fallback-url", type=_url,
                   help="also set every configured number's fallback URL")  # fmt: skip
    p.add_argument("--status-callback", type=_url,
                   help="also set every configured number's status callback")  # fmt: skip
    p.set_defaults(func=lambda args: asyncio.run(run(args)))
