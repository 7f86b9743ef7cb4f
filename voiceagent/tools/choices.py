"""The one argument of a built-in tool that picks one of the number's options (`set_language`'s
language, `set_turn_taking`'s preset): its JSON schema (an enum, each option described) and the
refusal of a value outside it (the second lock behind the enum)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from voiceagent.tools.calls import ToolCall, ToolOutcome, ToolResult, failed


def choice_parameters(name: str, options: Sequence[tuple[str, str]], intro: str) -> dict[str, Any]:
    """`{name: enum of the option keys}`; `options` are (key, what it is) pairs."""
    text = "; ".join(f"{key}: {label}" if label else key for key, label in options)
    return {
        "type": "object",
        "properties": {
            name: {
                "type": "string",
                "enum": [key for key, _ in options],
                "description": f"{intro} Options: {text}.",
            }
        },
        "required": [name],
        "additionalProperties": False,
    }


def not_a_choice(call: ToolCall, value: str, keys: Sequence[str], what: str) -> ToolResult:
    """The refusal of `value`, naming the allowed keys (the log detail never the whole value)."""
    return failed(
        call, ToolOutcome.INVALID_ARGUMENTS,
        f"{value!r} is not available. Allowed: {', '.join(keys)}.",
        detail=f"{what} {value[:32]!r} not allowed",
    )  # fmt: skip
