"""The rules an outbound dial must pass, without I/O: calling hours, do-not-call, templates.

``check_dial`` returns the number's outbound settings or raises ``OutboundRefused`` naming
why: the ``from`` number has no ``outbound:`` settings, the ``to`` number is not E.164, it is
on a do-not-call list, or the number's local time is outside its calling hours.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, time
from zoneinfo import ZoneInfo

from voiceagent.config import E164, Config
from voiceagent.config_models import CallingHours, OutboundConfig
from voiceagent.errors import OutboundRefused, RefusalKind
from voiceagent.outbound.do_not_call import read_do_not_call

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
MAX_VARIABLES = 50
MAX_VARIABLE_CHARS = 500


def render(template: str, variables: Mapping[str, str]) -> str:
    """``{{name}}`` placeholders filled from ``variables`` (unknown ones render empty)."""
    return _PLACEHOLDER.sub(lambda m: variables.get(m.group(1), ""), template)


def clean_variables(raw: Mapping[str, object]) -> dict[str, str]:
    """Call variables as strings, bounded (OutboundRefused for too many or too long)."""
    if len(raw) > MAX_VARIABLES:
        raise OutboundRefused(RefusalKind.INVALID, f"at most {MAX_VARIABLES} variables")
    out: dict[str, str] = {}
    for name, value in raw.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", str(name)):
            raise OutboundRefused(RefusalKind.INVALID, f"bad variable name {str(name)[:40]!r}")
        text = "" if value is None else str(value)
        if len(text) > MAX_VARIABLE_CHARS:
            raise OutboundRefused(RefusalKind.INVALID, f"variable {name!r} is too long")
        out[str(name)] = text
    return out


def within_hours(hours: CallingHours, now: datetime) -> bool:
    """Whether ``now`` (timezone-aware) falls in the window, in the window's time zone."""
    local = now.astimezone(ZoneInfo(hours.timezone)).time()
    start, end = time.fromisoformat(hours.start), time.fromisoformat(hours.end)
    if start <= end:
        return start <= local < end
    return local >= start or local < end  # spans midnight


class DoNotCall:
    """The do-not-call lists of one config (top level and per number), read once per config:
    a reload reads them again."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.everyone = read_do_not_call(config.do_not_call) if config.do_not_call else frozenset()
        self.per_number: dict[str, frozenset[str]] = {}
        for number, entry in config.numbers.items():
            if entry.outbound is not None and entry.outbound.do_not_call:
                self.per_number[number] = read_do_not_call(entry.outbound.do_not_call)

    def blocks(self, number: str, to: str) -> bool:
        return to in self.everyone or to in self.per_number.get(number, frozenset())


def check_dial(
    config: Config, lists: DoNotCall, from_: str, to: str, now: datetime
) -> OutboundConfig:
    """The ``from`` number's outbound settings if a call to ``to`` may be placed now."""
    entry = config.numbers.get(from_)
    if entry is None or entry.outbound is None:
        raise OutboundRefused(
            RefusalKind.NOT_OUTBOUND,
            f"'from' {from_[:20]!r} is not a configured number with outbound: settings",
        )
    if not E164.match(to):
        raise OutboundRefused(RefusalKind.INVALID, "'to' is not an E.164 number like +14155550123")
    if lists.blocks(from_, to):
        raise OutboundRefused(RefusalKind.DO_NOT_CALL, "'to' is on a do-not-call list")
    hours = entry.outbound.calling_hours
    if hours is not None and not within_hours(hours, now):
        raise OutboundRefused(
            RefusalKind.CALLING_HOURS,
            f"outside calling hours {hours.start}-{hours.end} {hours.timezone}",
        )
    return entry.outbound
