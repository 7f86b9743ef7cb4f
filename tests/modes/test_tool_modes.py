"""Tools in both modes inside the shared lifecycle, through in-memory channels: the test plays
Twilio and Inworld (a Realtime session, or the scripted Router). No sockets: the built-in
tools need no HTTP."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from typing import Any

import orjson

from tests.modes.memory import (
    CALL_SID,
    STREAM_SID,
    MemoryCall,
    memory_services,
    setup_frame,
    spoken,
    start_frame,
)
from voiceagent.config import parse_config
from voiceagent.errors import UpstreamError
from voiceagent.modes.realtime_passthrough import RealtimePassthrough
from voiceagent.modes.relay_router import RelayRouter
from voiceagent.protocols.inworld_router import ChatRequest, RouterChunk, ToolCallDelta
from voiceagent.session.call import EndReason

REALTIME, RELAY = "+18005550101", "+18005550102"
TOOLS = [
    {"name": "end_call"},
    {"name": "transfer_call", "destinations": {"front_desk": {"number": "+18005550199"}}},
]
CONFIG = parse_config({
    "defaults": {"agent": {"tools": TOOLS, "greeting": "Hi."}},
    "numbers": {REALTIME: {"mode": "realtime-passthrough", "realtime": {"greet_first": False}},
                RELAY: {"mode": "relay-router"}},
})  # fmt: skip


async def _send(upstream: Any, *events: dict[str, Any]) -> None:
    for event in events:
        await upstream.send(orjson.dumps(event).decode())


async def _next_of(upstream: Any, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            event = orjson.loads(await upstream.receive())
            if event.get("type") == kind:
                return dict(event)


async def test_realtime_transfer_runs_off_the_pumps_and_the_action_dials() -> None:
    """session.update declares the tools; a transfer_call's output goes up, Inworld's spoken
    follow-up is played, and once its mark is echoed the call ends: the action `<Dial>`s
    the plan's number for the destination name the outcome carries."""
    async with memory_services(CONFIG) as services:
        call = MemoryCall.start(services, RealtimePassthrough())
        await call.twilio.send(start_frame(REALTIME, services))
        _, upstream = await asyncio.wait_for(call.connector.sessions.get(), 5)
        update = orjson.loads(await upstream.receive())
        assert [t["name"] for t in update["session"]["tools"]] == ["end_call", "transfer_call"]
        item = {"id": "f1", "type": "function_call", "call_id": "c1", "name": "transfer_call"}
        await _send(
            upstream,
            {"type": "response.created", "response": {"id": "r1"}},
            {"type": "response.output_item.added", "response_id": "r1", "item": item},
            {"type": "response.function_call_arguments.done", "response_id": "r1",
             "item_id": "f1", "call_id": "c1", "arguments": '{"destination":"front_desk"}'},
            {"type": "response.done", "response": {"id": "r1"}},
        )  # fmt: skip
        output = await _next_of(upstream, "conversation.item.create")
        assert output["item"]["call_id"] == "c1" and "front_desk" in output["item"]["output"]
        audio = base64.b64encode(b"\x7f" * 800).decode()
        await _send(
            upstream,
            {"type": "response.created", "response": {"id": "r2"}},
            {"type": "response.output_audio.delta", "response_id": "r2", "item_id": "i2",
             "delta": audio},
            {"type": "response.output_audio.done", "response_id": "r2", "item_id": "i2"},
            {"type": "response.done", "response": {"id": "r2"}},
        )  # fmt: skip
        media, mark = await call.phone_frames(2)
        assert (media["event"], mark["event"]) == ("media", "mark")
        await call.twilio.send(orjson.dumps({"event": "mark", "streamSid": STREAM_SID,
                                             "mark": mark["mark"]}).decode())  # fmt: skip
        ended = await call.ended()
        assert await upstream.receive() is None  # the Inworld session is closed
    assert ended.reason is EndReason.AGENT_ENDED and ended.transfer == "front_desk"
    assert call.summary["ended_by"] == "transfer" and call.summary["tool_calls"] == 1
    xml = await RealtimePassthrough().action({"CallSid": CALL_SID, "To": REALTIME}, services)
    assert "<Dial>+18005550199</Dial>" in xml


def _relay_script(request: ChatRequest) -> Sequence[RouterChunk | UpstreamError]:
    """The model ends the call when asked to, then says goodbye after the tool's result."""
    last = request.messages[-1]
    if last.role == "tool":
        return [*spoken("Goodbye! ", ms=100), RouterChunk(finish_reason="stop")]
    if last.content == "Bye":
        delta = ToolCallDelta(0, "c1", "end_call", "{}")
        return [RouterChunk(tool_calls=(delta,)), RouterChunk(finish_reason="tool_calls")]
    return [*spoken("Hi. ", ms=100), RouterChunk(finish_reason="stop")]


async def _fetch(services: Any, play: dict[str, Any]) -> None:
    """What Twilio does with a `play`: fetch the clip (our fetch-complete callback runs)."""
    clip_id = str(play["source"]).rsplit("/", 1)[1].removesuffix(".wav")
    await services.clips.get(clip_id)
    services.clips.fetched(clip_id)


async def test_relay_end_call_follows_up_then_ends_the_session_after_the_goodbye() -> None:
    """A streamed tool call becomes a round: no frame for the call itself, a follow-up request
    with the call and its result, the goodbye's `play`, and then `end` once it was heard
    (its clip fetched + played); if Twilio does not close the socket then, we do."""
    async with memory_services(CONFIG, script=_relay_script) as services:
        call = MemoryCall.start(services, RelayRouter())
        await call.twilio.send(setup_frame(RELAY, services))
        greeting, _ = await call.phone_frames(2)  # the greeting's play and its `last`
        await _fetch(services, greeting)
        await call.twilio.send('{"type":"prompt","voicePrompt":"Bye","last":true}')
        play, last = await call.phone_frames(2)
        assert play["type"] == "play" and last["type"] == "text"
        await _fetch(services, play)  # Twilio fetches the goodbye: now it plays
        [end] = await call.phone_frames(1)
        assert end == {"type": "end"}
        ended = await call.ended()  # Twilio did not close the socket: we do, shortly after
        assert call.phone.closed
    assert ended.reason is EndReason.AGENT_ENDED and call.summary["ended_by"] == "end_call"
    greeting, ask, follow_up = call.router.requests
    assert greeting.tools is None and ask.tools is not None and ask.tool_choice == "auto"
    roles = [(m.role, bool(m.tool_calls)) for m in follow_up.messages]
    assert roles[-3:] == [("user", False), ("assistant", True), ("tool", False)]
    assert [m["role"] for m in ended.history][-2:] == ["tool", "assistant"]
