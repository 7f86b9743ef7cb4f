"""structlog setup: JSON lines by default, console output on request; per-call binding.

Peer-supplied text is made safe before it is logged: ``clip`` bounds and sanitises one value,
``mask_number`` keeps only the last digits of a caller's number, and every string value of
every line is cut at ``MAX_VALUE_CHARS`` as a last line of defence (tracebacks excepted).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
MAX_VALUE_CHARS = 2000
CLIP_CHARS = 64


def clip(value: object, limit: int = CLIP_CHARS) -> str:
    """A peer-supplied value made safe to log or store: at most ``limit`` characters (the
    rest counted, not kept), non-printable characters replaced by ``?``."""
    text = str(value)
    kept = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return kept if len(text) <= limit else f"{kept}…(+{len(text) - limit} chars)"


def mask_number(number: str | None) -> str:
    """A phone number (or digits) for logs: only the last 4 digits, e.g. ``***0100``."""
    digits = "".join(c for c in (number or "")[:64] if c.isdigit())
    if not digits:
        return ""
    return "***" + digits[-4:] if len(digits) > 4 else "*" * len(digits)


def _cap_values(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Cut every overlong string value (peer text that escaped ``clip`` must not flood logs)."""
    for key, value in event_dict.items():
        if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            event_dict[key] = clip(value, MAX_VALUE_CHARS)
    return event_dict


def _dumps(obj: Any, default: Any = None) -> str:
    """JSON for one log line; a value orjson refuses (an integer past 64 bits, a str that is
    not valid UTF-8, a key that is not a string) is written as its ``str``, so no log line
    can raise into the code that logs it."""
    try:
        return orjson.dumps(obj, default=default or str).decode()
    except TypeError:
        return orjson.dumps(_plain(obj), default=str).decode()


def _plain(value: Any) -> Any:
    """``value`` with everything orjson may refuse turned into text."""
    if isinstance(value, dict):
        return {_text(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool | float) or value is None:
        return value
    if isinstance(value, int) and -(2**63) <= value < 2**64:
        return value
    return _text(value)


def _text(value: Any) -> str:
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:  # a value whose __str__ fails: name its type instead
        text = f"<{type(value).__name__}>"
    return text.encode("utf-8", errors="replace").decode("utf-8")


def log_processors(fmt: str = "json") -> list[Any]:
    """The processor chain of every log line, ending in the JSON (or console) renderer."""
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer(serializer=_dumps)
    )
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _cap_values,
        structlog.processors.format_exc_info,
        renderer,
    ]


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Configure structlog (and stdlib logging of third parties) once per process."""
    structlog.configure(
        processors=log_processors(fmt),
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(_LEVELS[level], logging.WARNING), stream=sys.stderr)


def bind_call(call_sid: str, number: str, mode: str, **extra: Any) -> None:
    """Bind the call's identity to every log line of the current task and its children."""
    structlog.contextvars.bind_contextvars(call_sid=call_sid, number=number, mode=mode, **extra)


def get_logger(name: str = "voiceagent") -> Any:
    return structlog.get_logger(name)
