"""The nouns of a tool call, shared by both modes: what the model asked, what came back.

``ToolCall`` is one call as the model made it (raw JSON arguments). ``ToolResult`` is what the
call produced: the ``output`` text the model gets back (JSON: the tool's answer, or a short
``{"error": ...}`` it can recover from), the ``outcome`` for logs and metrics, and for the
built-ins a typed ``action`` the call core executes after the agent's speech was heard.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import orjson

from voiceagent.config_knobs import TurnTakingPreset


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call the model made: ``call_id`` (Realtime ``call_id`` / Router ``tool_calls[].id``),
    the tool ``name`` ("" when the server never said it) and the raw JSON ``arguments``."""

    call_id: str
    name: str
    arguments: str


class ToolOutcome(StrEnum):
    """How a tool call went; a bounded label for logs and Prometheus."""

    OK = "ok"
    INVALID_ARGUMENTS = "invalid_arguments"  # not JSON, or not what the schema allows
    UNKNOWN_TOOL = "unknown_tool"  # a name this number does not declare
    TIMEOUT = "timeout"
    HTTP_ERROR = "http_error"  # a non-2xx answer
    BAD_RESPONSE = "bad_response"  # not JSON, or larger than the tool's limit
    UNREACHABLE = "unreachable"  # connection refused, DNS, TLS ...
    CANCELLED = "cancelled"  # the caller barged in, or the call ended, while it ran
    REFUSED = "refused"  # not run: the caller's turn already made too many calls


@dataclass(frozen=True, slots=True)
class EndCall:
    """End the call from our side once the agent's last audio was heard."""


@dataclass(frozen=True, slots=True)
class Transfer:
    """Hand the caller to ``number`` (the configured destination ``destination_name``), after
    speaking ``announcement`` if any."""

    destination_name: str
    number: str
    announcement: str | None = None


CallAction = EndCall | Transfer


@dataclass(frozen=True, slots=True)
class SwitchLanguage:
    """Speak and listen in another of the number's languages from now on (`set_language`):
    its code, the Inworld voice and Twilio voice for it, its STT language hints."""

    code: str
    voice: str | None = None
    stt_language_hints: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChangeTurnTaking:
    """Take turns another way from now on (`set_turn_taking`): one of the number's presets."""

    preset: TurnTakingPreset


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What one call produced; ``output`` goes back to the model verbatim."""

    call: ToolCall
    outcome: ToolOutcome
    output: str
    action: CallAction | SwitchLanguage | ChangeTurnTaking | None = None
    duration_ms: float = 0.0
    detail: str = ""  # a short reason for logs (never the secret headers)

    @property
    def ok(self) -> bool:
        return self.outcome is ToolOutcome.OK

    @property
    def is_error(self) -> bool:
        """Failed for a reason of its own (not cancelled by a barge-in or the call's end): what
        the report's tool error rate counts."""
        return self.outcome not in (ToolOutcome.OK, ToolOutcome.CANCELLED)


def error_output(kind: str, message: str) -> str:
    """The JSON text a failed call returns to the model: short, and says what to do next."""
    return orjson.dumps({"error": kind, "message": message}).decode()


def failed(
    call: ToolCall, outcome: ToolOutcome, message: str, detail: str = "", duration_ms: float = 0.0
) -> ToolResult:
    """A result for a call that did not succeed; the model reads ``message``."""
    return ToolResult(
        call, outcome, error_output(outcome.value, message), duration_ms=duration_ms,
        detail=detail or message,
    )  # fmt: skip


def refused(call: ToolCall) -> ToolResult:
    """The result of a call not run because the turn already made too many (a model in a
    loop, or a caller talking it into one)."""
    return failed(
        call, ToolOutcome.REFUSED,
        "Too many tool calls for one turn: this one was not run. Answer the caller now.",
        detail="too many calls in one turn",
    )  # fmt: skip


def cancelled(call: ToolCall, duration_ms: float = 0.0) -> ToolResult:
    """The result to send for a call interrupted by the caller: the model is never left
    waiting for an output, and knows the action did not complete."""
    return failed(
        call, ToolOutcome.CANCELLED,
        "The caller interrupted before this finished; it was not completed. Ask if still needed.",
        detail="cancelled", duration_ms=duration_ms,
    )  # fmt: skip
