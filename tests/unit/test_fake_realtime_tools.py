"""The fake Inworld Realtime calls scripted tools as docs/protocols.md, Inworld §1.6 shows, and
replies once per function_call_output whether it starts the follow-up itself (today) or waits for
response.create (older servers)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from voiceagent.audio import silence_ulaw, speech_like_ulaw
from voiceagent.sim.fake_inworld_realtime import FakeInworldRealtime
from voiceagent.sim.fake_options import FakeRealtimeOptions
from voiceagent.sim.fake_tool_calls import ScriptedToolCall

AUTH = {"Authorization": "Basic fake-inworld-key"}
WEATHER = ScriptedToolCall("weather", "get_weather", {"city": "Paris"})
TOOLS = [
    {"type": "function", "name": "get_weather", "description": "Weather.",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
    {"type": "function", "name": "end_call", "description": "Hang up.",
     "parameters": {"type": "object", "properties": {}}},
]  # fmt: skip
FAST: dict[str, Any] = {"first_delta_delay_s": 0.0, "chunk_gap_s": 0.0, "response_audio_ms": 200}


class Client:
    """A bare Realtime client: send events, read until a type, keep everything read."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send_str(orjson.dumps(event).decode())

    async def until(self, kind: str, count: int = 1) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        while sum(e["type"] == kind for e in got) < count:
            msg = await self.ws.receive(timeout=5)
            assert msg.type is aiohttp.WSMsgType.TEXT, msg
            got.append(orjson.loads(msg.data))
        self.seen += got
        return got

    async def say(self, text: str) -> None:
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        }
        await self.send({"type": "conversation.item.create", "item": item})
        await self.until("conversation.item.added")

    async def output(self, call_id: str, output: str) -> None:
        item = {"type": "function_call_output", "call_id": call_id, "output": output}
        await self.send({"type": "conversation.item.create", "item": item})


@pytest.fixture
def options() -> FakeRealtimeOptions:
    return FakeRealtimeOptions(tool_calls=(WEATHER,), **FAST)


@pytest.fixture
async def session(
    options: FakeRealtimeOptions,
) -> AsyncIterator[tuple[FakeInworldRealtime, Client]]:
    async with FakeInworldRealtime(options) as fake, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(fake.url + "?key=CA-tools&protocol=realtime", headers=AUTH)
        client = Client(ws)
        await client.send({"type": "session.update", "session": {"tools": TOOLS}})
        await client.until("session.updated")
        yield fake, client
        await ws.close()


def _transcript(events: list[dict[str, Any]]) -> str:
    kind = "response.output_audio_transcript.delta"
    return "".join(e["delta"] for e in events if e["type"] == kind)


async def test_function_call_events_follow_the_reference(session: Any) -> None:
    """A matching phrase gives output_item.added (function_call), conversation.item.added,
    arguments in pieces, arguments.done with call_id and name, output_item.done, and a
    response.done listing the call."""
    _, client = session
    await client.say("What's the weather like?")
    await client.send({"type": "response.create"})
    events = await client.until("response.done")
    kinds = [e["type"] for e in events]
    added = next(e for e in events if e["type"] == "response.output_item.added")
    assert added["item"]["type"] == "function_call" and added["item"]["name"] == "get_weather"
    assert "conversation.item.added" in kinds
    deltas = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert len(deltas) > 1 and "".join(deltas) == done["arguments"] == '{"city":"Paris"}'
    assert done["call_id"] == added["item"]["call_id"] and done["name"] == "get_weather"
    assert kinds.index("response.function_call_arguments.done") < kinds.index("response.done")
    [item] = events[-1]["response"]["output"]
    assert item["type"] == "function_call" and item["arguments"] == '{"city":"Paris"}'


async def test_auto_follow_up_uses_the_output_and_a_late_response_create_is_ignored(
    session: Any,
) -> None:
    """After the output, the fake replies by itself with the tool's answer; a response.create
    sent after that reply (an older client) produces no second reply."""
    fake, client = session
    await client.say("weather please")
    await client.send({"type": "response.create"})
    events = await client.until("response.done")
    call_id = next(e for e in events if "call_id" in e)["call_id"]
    await client.output(call_id, '{"forecast":"light rain"}')
    follow_up = await client.until("response.done")
    assert "light rain" in _transcript(follow_up)
    await client.send({"type": "response.create"})
    await client.send({"type": "input_audio_buffer.clear"})  # a marker to read up to
    after = await client.until("input_audio_buffer.cleared")
    record = fake.sessions[0]
    assert [r.trigger for r in record.responses] == ["response.create", "function_call_output"]
    assert record.ignored_response_creates == 1
    assert not any(e["type"] == "response.created" for e in after)
    assert record.function_outputs() == [
        {"type": "function_call_output", "call_id": call_id, "output": '{"forecast":"light rain"}'}
    ]


async def test_response_create_during_the_auto_follow_up_is_refused(session: Any) -> None:
    """A response.create sent right behind the output meets the running follow-up and gets
    conversation_already_has_active_response: still one reply."""
    fake, client = session
    await client.say("weather")
    await client.send({"type": "response.create"})
    call_id = next(e for e in await client.until("response.done") if "call_id" in e)["call_id"]
    await client.output(call_id, '{"forecast":"sunny"}')
    await client.send({"type": "response.create"})
    events = await client.until("response.done")
    error = next(e for e in events if e["type"] == "error")
    assert error["error"]["code"] == "conversation_already_has_active_response"
    assert [r.trigger for r in fake.sessions[0].responses][1:] == ["function_call_output"]


@pytest.mark.parametrize(
    "options",
    [FakeRealtimeOptions(tool_calls=(WEATHER,), follow_up="response_create", **FAST)],
)
async def test_older_server_waits_for_response_create(session: Any) -> None:
    """With follow_up=response_create the output alone starts nothing; response.create then
    gets the one reply that uses it."""
    fake, client = session
    await client.say("weather")
    await client.send({"type": "response.create"})
    call_id = next(e for e in await client.until("response.done") if "call_id" in e)["call_id"]
    await client.output(call_id, '{"forecast":"fog"}')
    await client.until("conversation.item.added")
    await client.send({"type": "input_audio_buffer.clear"})
    quiet = await client.until("input_audio_buffer.cleared")
    assert not any(e["type"] == "response.created" for e in quiet)
    await client.send({"type": "response.create"})
    assert "fog" in _transcript(await client.until("response.done"))
    assert [r.trigger for r in fake.sessions[0].responses] == ["response.create"] * 2


@pytest.mark.parametrize(
    "options",
    [FakeRealtimeOptions(
        tool_calls=(ScriptedToolCall("bye", "end_call", {}, say="Goodbye!"),),
        function_name_on_done=False, **FAST,
    )],
)  # fmt: skip
async def test_words_then_call_and_name_left_off_done(session: Any) -> None:
    """A script with `say` speaks first, then calls, in one response; with
    function_name_on_done=False the arguments.done has no name (track it by call_id)."""
    _, client = session
    await client.say("ok bye then")
    await client.send({"type": "response.create"})
    events = await client.until("response.done")
    assert _transcript(events) == "Goodbye!"
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert "name" not in done and done["arguments"] == "{}"
    output = events[-1]["response"]["output"]
    assert [i["type"] for i in output] == ["message", "function_call"]


@pytest.mark.parametrize(
    "options", [FakeRealtimeOptions(tool_calls=(ScriptedToolCall("x", "transfer_call"),), **FAST)]
)
async def test_undeclared_tool_is_never_called(session: Any) -> None:
    """A script for a tool the client did not declare gives an ordinary spoken answer."""
    _, client = session
    await client.say("x marks the spot")
    await client.send({"type": "response.create"})
    events = await client.until("response.done")
    assert not any("call_id" in e for e in events) and _transcript(events)


async def test_output_sent_before_response_done_gets_one_follow_up(session: Any) -> None:
    """An output sent as soon as arguments.done arrives (before response.done) is answered
    once the tool response ends, exactly once."""
    fake, client = session
    await client.say("weather")
    await client.send({"type": "response.create"})
    done = await client.until("response.function_call_arguments.done")
    await client.output(done[-1]["call_id"], '{"forecast":"hail"}')
    events = await client.until("response.done", count=2)
    assert "hail" in _transcript(events)
    assert [r.trigger for r in fake.sessions[0].responses] == [
        "response.create",
        "function_call_output",
    ]


@pytest.mark.parametrize(
    "options",
    [FakeRealtimeOptions(transcripts=("is the weather nice",), tool_calls=(WEATHER,),
                         vad_hangover_ms=200, **FAST)],
)  # fmt: skip
async def test_spoken_turn_triggers_the_call(session: Any) -> None:
    """A VAD turn whose transcript has the phrase makes the automatic response a call."""
    _, client = session
    ulaw = {"audio": {"input": {"format": {"type": "audio/pcmu"}}}}
    await client.send({"type": "session.update", "session": ulaw})
    await client.until("session.updated")
    for audio in (speech_like_ulaw(600), silence_ulaw(400)):
        payload = base64.b64encode(audio).decode()
        await client.send({"type": "input_audio_buffer.append", "audio": payload})
    events = await client.until("response.done")
    assert any(e["type"] == "response.function_call_arguments.done" for e in events)
