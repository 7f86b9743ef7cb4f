"""Tool calling in the fake Router, as OpenAI-format chat completions do it (docs/protocols.md,
Inworld §2.3: the Router streams tool calls in that format).

The request side: an assistant message that made ``tool_calls`` may have ``content: null``
(``normalized_body`` makes it parse with the codec until ``ChatMessage.content`` is optional),
and the history must be consistent, else HTTP 400 with OpenAI's wording
(``tool_message_error``). The answer side: ``plan_reply`` decides between a spoken follow-up
that uses the ``tool`` results, a scripted call (caller phrase, tool declared in ``tools``),
or the ordinary answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from voiceagent.sim.fake_tool_calls import ScriptedToolCall, match_tool_call, tool_answer
from voiceagent.tools.calls import ToolCall


def normalized_body(raw: bytes) -> bytes:
    """``raw`` with ``content: null`` messages given ``""`` (what the codec parses today)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return raw
    for message in messages:
        if isinstance(message, dict) and "content" in message and message["content"] is None:
            message["content"] = ""
    return orjson.dumps(body)


def raw_messages(raw: bytes) -> list[dict[str, Any]]:
    """The request's messages exactly as sent (``tool_calls`` and ``tool_call_id`` included)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return []
    messages = body.get("messages") if isinstance(body, dict) else None
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def declared_tools(raw: bytes) -> set[str]:
    """Names of the request's ``tools`` (OpenAI format: ``{"type":"function","function":{}}``)."""
    try:
        tools = orjson.loads(raw).get("tools") or []
    except (orjson.JSONDecodeError, AttributeError):
        return set()
    return {
        str(t["function"].get("name"))
        for t in tools
        if isinstance(t, dict) and isinstance(t.get("function"), dict)
    }


def tool_message_error(messages: list[dict[str, Any]]) -> str | None:
    """OpenAI's 400 message when ``tool`` messages do not answer the calls just before them."""
    expected: list[str] = []
    for message in messages:
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in expected:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceding message with 'tool_calls'."
                )
            expected.remove(call_id)
            continue
        if expected:
            break
        if role == "assistant":
            expected = [str(c.get("id")) for c in message.get("tool_calls") or []]
    if expected:
        return (
            "An assistant message with 'tool_calls' must be followed by tool messages "
            "responding to each 'tool_call_id'. The following tool_call_ids did not have "
            f"response messages: {', '.join(expected)}"
        )
    return None


@dataclass(frozen=True, slots=True)
class ToolReply:
    """What to stream: ``text`` to speak (may be empty) and then ``calls`` (may be none)."""

    text: str
    calls: tuple[ToolCall, ...] = ()


def plan_reply(
    raw: bytes, scripts: tuple[ScriptedToolCall, ...], template: str, request_no: int
) -> ToolReply | None:
    """A follow-up using the trailing ``tool`` results, a scripted call for the last caller
    words, or None (the ordinary answer)."""
    messages = raw_messages(raw)
    if messages and messages[-1].get("role") == "tool":
        trailing: list[dict[str, Any]] = []
        for message in reversed(messages):
            if message.get("role") != "tool":
                break
            trailing.insert(0, message)
        names = _call_names(messages)
        outputs = [
            (names.get(str(m.get("tool_call_id")), "tool"), str(m.get("content") or ""))
            for m in trailing
        ]
        return ToolReply(tool_answer(template, outputs, scripts))
    if not messages or messages[-1].get("role") != "user":
        return None
    script = match_tool_call(scripts, str(messages[-1].get("content") or ""), declared_tools(raw))
    if script is None:
        return None
    call = ToolCall(f"call_{request_no}_0", script.name, script.arguments_json)
    return ToolReply(script.say, (call,))


def _call_names(messages: list[dict[str, Any]]) -> dict[str, str]:
    return {
        str(c.get("id")): str((c.get("function") or {}).get("name"))
        for m in messages
        for c in m.get("tool_calls") or []
        if isinstance(c, dict)
    }
