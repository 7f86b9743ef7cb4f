"""The fake Router calls scripted tools in OpenAI chunk format, answers the follow-up request
with the tool results, and refuses an inconsistent tool history as OpenAI does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from voiceagent.protocols import inworld_router as ir
from voiceagent.sim.fake_router import FakeRouter
from voiceagent.sim.fake_router_tools import tool_message_error
from voiceagent.sim.fake_tool_calls import ScriptedToolCall
from voiceagent.tools.calls import ToolCall, ToolOutcome, ToolResult
from voiceagent.tools.history import assistant_tool_calls, tool_message
from voiceagent.tools.router_calls import ToolCallAccumulator, parse_tool_call_deltas

KEY = "test-inworld-key"
ORDER = ScriptedToolCall("my order", "order_status", {"order_id": "A-1234"})
TOOLS = [
    {"type": "function", "function": {"name": "order_status", "description": "Order status.",
                                      "parameters": {"type": "object", "properties": {}}}},
]  # fmt: skip
AUDIO = {"voice": "Clive", "model": "inworld-tts-2"}


@pytest.fixture
async def router() -> AsyncIterator[FakeRouter]:
    fake = FakeRouter(api_key=KEY, ms_per_char=5.0, tool_calls=(ORDER,))
    await fake.start()
    yield fake
    await fake.close()


async def _post(router: FakeRouter, messages: list[dict[str, Any]], **body: Any) -> Any:
    """POST a streamed request; return (status, transcript text, tool calls, finish, audio)."""
    payload = {"model": "openai/gpt-4.1-mini", "messages": messages, "stream": True, **body}
    headers = {"Authorization": f"Basic {KEY}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(router.url, data=orjson.dumps(payload), headers=headers) as response,
    ):
        if response.status != 200:
            return response.status, await response.json(), [], None, 0
        decoder, acc, text, finish, audio = ir.SseDecoder(), ToolCallAccumulator(), "", None, 0
        async for data in response.content.iter_any():
            for payload_text in decoder.feed(data):
                if payload_text == "[DONE]":
                    continue
                chunk = orjson.loads(payload_text)
                delta = chunk["choices"][0]["delta"]
                acc.feed(parse_tool_call_deltas(delta.get("tool_calls")))
                event = ir.parse_event(payload_text)
                assert isinstance(event, ir.RouterChunk)
                text += event.transcript or event.content or ""
                audio += len(event.audio)
                finish = event.finish_reason or finish
        return 200, text, acc.calls(), finish, audio


async def test_phrase_with_declared_tool_streams_tool_calls(router: FakeRouter) -> None:
    """A user message with the phrase, the tool declared: tool_calls in pieces, no audio,
    finish_reason tool_calls."""
    user = {"role": "user", "content": "Where is my order?"}
    status, text, calls, finish, audio = await _post(router, [user], tools=TOOLS, audio=AUDIO)
    assert status == 200 and text == "" and audio == 0
    assert calls == [ToolCall("call_1_0", "order_status", '{"order_id":"A-1234"}')]
    assert finish == "tool_calls"
    assert router.requests[0].tool_calls == tuple(calls)


async def test_follow_up_request_gets_a_spoken_answer_using_the_result(router: FakeRouter) -> None:
    """The request carrying the assistant tool_calls message (content null) and the tool
    result is answered in speech that uses the result text."""
    call = ToolCall("call_1_0", "order_status", '{"order_id":"A-1234"}')
    result = ToolResult(call, ToolOutcome.OK, '{"status":"shipped"}')
    messages = [
        {"role": "user", "content": "Where is my order?"},
        assistant_tool_calls([call]),
        tool_message(result),
    ]
    status, text, calls, finish, audio = await _post(router, messages, tools=TOOLS, audio=AUDIO)
    assert status == 200 and calls == [] and finish == "stop" and audio > 0
    assert "shipped" in text
    sent = router.requests[0].messages
    assert sent[1]["content"] is None and sent[1]["tool_calls"][0]["id"] == "call_1_0"
    assert sent[2] == {
        "role": "tool",
        "tool_call_id": "call_1_0",
        "content": '{"status":"shipped"}',
    }


async def test_undeclared_tool_is_not_called(router: FakeRouter) -> None:
    """Without `tools` in the request the phrase gets an ordinary answer."""
    status, text, calls, _, _ = await _post(router, [{"role": "user", "content": "my order?"}])
    assert status == 200 and calls == [] and text


async def test_say_comes_with_audio_before_the_call() -> None:
    """A script with `say` streams those words (and audio) and then the call."""
    script = ScriptedToolCall("bye", "order_status", {}, say="One moment.")
    router = FakeRouter(api_key=KEY, ms_per_char=5.0, tool_calls=(script,))
    await router.start()
    try:
        user = {"role": "user", "content": "bye"}
        _, text, calls, finish, audio = await _post(router, [user], tools=TOOLS, audio=AUDIO)
    finally:
        await router.close()
    assert text.strip() == "One moment." and audio > 0
    assert [c.name for c in calls] == ["order_status"] and finish == "tool_calls"


async def test_call_without_result_is_refused_with_400(router: FakeRouter) -> None:
    """An assistant tool_calls message not followed by its tool result is an HTTP 400."""
    call = ToolCall("call_9", "order_status", "{}")
    messages = [assistant_tool_calls([call]), {"role": "user", "content": "hello?"}]
    status, body, *_ = await _post(router, messages, tools=TOOLS)
    assert status == 400 and "call_9" in body["error"]["message"]


def test_tool_history_rules() -> None:
    """A result must answer a call just before it; every call needs its result."""
    call = assistant_tool_calls([ToolCall("a", "t", "{}"), ToolCall("b", "t", "{}")])
    result_a = {"role": "tool", "tool_call_id": "a", "content": "{}"}
    result_b = {"role": "tool", "tool_call_id": "b", "content": "{}"}
    assert tool_message_error([call, result_a, result_b]) is None
    assert "b" in (tool_message_error([call, result_a]) or "")
    orphan = tool_message_error([{"role": "user", "content": "x"}, result_a])
    assert orphan is not None and "preceding" in orphan
