"""One log line per tool call, and the bounded labels its Prometheus counter uses.

``tool_called`` carries the tool, outcome and duration (and the action of a built-in); the
model's arguments only when the number records transcripts (they may hold what the caller
said: names, order numbers ...). Label values are bounded: a name the number does not
declare is counted as ``other``, so a model cannot grow the exposition.
"""

from __future__ import annotations

from typing import Any

from voiceagent.logging import clip
from voiceagent.tools.calls import ToolOutcome, ToolResult, Transfer

OTHER = "other"
ARGUMENTS_LOG_CHARS = 500


def log_fields(result: ToolResult, record_transcripts: bool) -> dict[str, Any]:
    """The key/value fields of the ``tool_called`` line."""
    fields: dict[str, Any] = {
        "tool": clip(result.call.name or "?"),
        "call_id": clip(result.call.call_id),
        "outcome": result.outcome.value,
        "duration_ms": round(result.duration_ms, 1),
    }
    if isinstance(result.action, Transfer):
        fields["action"] = "transfer"
        fields["destination"] = result.action.destination_name
    elif result.action is not None:
        fields["action"] = "end_call"
    if not result.ok and result.detail:
        fields["detail"] = clip(result.detail, 200)
    if record_transcripts:
        fields["arguments"] = clip(result.call.arguments, ARGUMENTS_LOG_CHARS)
    return fields


def log_tool_call(log: Any, result: ToolResult, record_transcripts: bool) -> None:
    """Emit ``tool_called`` (info when it went well, warning otherwise) on ``log``."""
    fields = log_fields(result, record_transcripts)
    if result.ok or result.outcome is ToolOutcome.CANCELLED:
        log.info("tool_called", **fields)
    else:
        log.warning("tool_called", **fields)


def metric_labels(result: ToolResult) -> tuple[str, str]:
    """``(tool, outcome)`` for the counter; undeclared names become ``other``."""
    known = result.outcome is not ToolOutcome.UNKNOWN_TOOL and bool(result.call.name)
    return (result.call.name if known else OTHER), result.outcome.value
