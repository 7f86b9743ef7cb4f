"""Do-not-call files: E.164 per line, blank lines and ``#`` comments allowed. No config here
(the config's validators read them at load, so a bad file fails check-config and reloads)."""

from __future__ import annotations

import re
from pathlib import Path

from voiceagent.errors import ConfigError

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")


def read_do_not_call(path: str) -> frozenset[str]:
    """The numbers of a do-not-call file; ConfigError naming the file and line otherwise."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read do-not-call file: {exc.strerror}", path=path) from exc
    numbers: set[str] = set()
    for line_no, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if not _E164.match(entry):
            raise ConfigError(f"line {line_no} is not an E.164 number", path=path)
        numbers.add(entry)
    return frozenset(numbers)


def check_do_not_call(path: str | None) -> str | None:
    """A pydantic validator's check: the file reads as a do-not-call list (ValueError if not)."""
    if path is not None:
        try:
            read_do_not_call(path)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    return path
