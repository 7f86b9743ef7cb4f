"""Tool calls and results as conversation history (OpenAI chat-completions format).

A call that happened stays in the history: an assistant message with ``tool_calls`` (and the
spoken text of that response as far as it was heard, if any), then one ``tool`` message per
call. ``consistent`` is the last check before history goes to a model: every ``tool_calls``
id has its ``tool`` message and every ``tool`` message follows its call (the Router, like
OpenAI, refuses a request that breaks this), e.g. after a barge-in or history trimming.
Pure functions over plain message dicts, so ``session/history.py`` can use them as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from voiceagent.tools.calls import ToolCall, ToolResult

Message = dict[str, Any]


def assistant_tool_calls(calls: Sequence[ToolCall], text: str = "") -> Message:
    """The assistant message that made ``calls``; ``content`` is the heard text or None.

    Arguments that are not a JSON object are sent back as ``{}`` (the call is still recorded;
    some providers behind the Router refuse a request whose history holds broken JSON)."""
    return {
        "role": "assistant",
        "content": text or None,
        "tool_calls": [
            {
                "id": call.call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": _json_object(call.arguments)},
            }
            for call in calls
        ],
    }


def tool_message(result: ToolResult) -> Message:
    """The ``tool`` message carrying one call's output."""
    return {"role": "tool", "tool_call_id": result.call.call_id, "content": result.output}


def calls_of(message: Message) -> tuple[ToolCall, ...]:
    """The calls of an assistant message's ``tool_calls`` (e.g. restoring another leg's history)."""
    calls = message.get("tool_calls") or []
    return tuple(
        ToolCall(str(c.get("id")), str(f.get("name") or ""), str(f.get("arguments") or ""))
        for c in calls
        if isinstance(c, dict) and isinstance(f := c.get("function") or {}, dict)
    )


def consistent(messages: Sequence[Message]) -> list[Message]:
    """``messages`` as a model accepts them: each ``tool`` message right after the assistant
    message that made its call; calls without a result and results without a call dropped
    (an assistant message left with neither calls nor text goes too). Order is otherwise kept."""
    results: dict[str, Message] = {}
    for message in messages:
        if message.get("role") == "tool":
            results.setdefault(str(message.get("tool_call_id")), message)
    out: list[Message] = []
    used: set[str] = set()
    for message in messages:
        calls = message.get("tool_calls")
        if message.get("role") == "tool":
            continue
        if message.get("role") != "assistant" or not calls:
            out.append(message)
            continue
        kept = [c for c in calls if c.get("id") in results and c.get("id") not in used]
        if kept:
            out.append({**message, "tool_calls": kept})
            out.extend(results[c["id"]] for c in kept)
            used.update(c["id"] for c in kept)
        elif message.get("content"):
            out.append({k: v for k, v in message.items() if k != "tool_calls"})
    return out


def _json_object(arguments: str) -> str:
    try:
        value = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        return "{}"
    return arguments if isinstance(value, dict) and arguments.strip() else "{}"
