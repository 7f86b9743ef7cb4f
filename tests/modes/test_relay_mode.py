"""relay-router driven inside the shared lifecycle through in-memory channels: the test plays
ConversationRelay on one channel; the Router is the in-memory `ScriptedRouter`. No sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from itertools import pairwise

from tests.modes.memory import (
    CALL_SID,
    MemoryCall,
    default_script,
    memory_services,
    setup_frame,
    spoken,
)
from voiceagent.config import parse_config
from voiceagent.errors import UpstreamError, UpstreamFailure
from voiceagent.modes.relay_router import RelayRouter
from voiceagent.protocols.inworld_router import ChatRequest, RouterChunk
from voiceagent.session.call import EndReason
from voiceagent.session.relay_call import GREETING_INSTRUCTIONS
from voiceagent.store.live.call_state import CallOutcome

MODE = RelayRouter()
NUMBER = "+18005550102"


def _config(**relay: object) -> object:
    return parse_config({
        "defaults": {"agent": {"instructions": "Be brief.", "greeting": "Hello there!",
                               "apology": "Sorry, a glitch."}},
        "numbers": {NUMBER: {"mode": "relay-router", "relay": {
            "handoff": {"type": "dial", "number": "+18005550199"}, **relay}}},
    })  # fmt: skip


async def _reply(call: MemoryCall) -> list[dict[str, object]]:
    """Frames of one reply: every play/text up to the `last: true` that closes it."""
    frames = []
    while True:
        [frame] = await call.phone_frames(1)
        frames.append(frame)
        if frame.get("last"):
            return frames


async def test_greeting_and_a_turn_are_spoken_as_preemptible_clips() -> None:
    """Setup → the greeting in the agent's voice; a prompt → a reply with the whole history;
    each sentence is one preemptible `play` of a complete clip; each reply ends its cycle."""
    async with memory_services(_config()) as services:  # type: ignore[arg-type]
        call = MemoryCall.start(services, MODE)
        await call.twilio.send(setup_frame(NUMBER, services))
        greeting = await _reply(call)
        assert [f["type"] for f in greeting] == ["play", "play", "text"]
        assert all(f["preemptible"] is True for f in greeting)
        clip_id = str(greeting[0]["source"]).rsplit("/", 1)[1].removesuffix(".wav")
        assert (await services.clips.get(clip_id)).data[:4] == b"RIFF"
        await call.twilio.send('{"type":"prompt","voicePrompt":"Hours?","last":true}')
        await _reply(call)
        await call.twilio.close()
        ended = await call.ended()
    first, second = call.router.requests
    assert first.messages[0].content == GREETING_INSTRUCTIONS
    assert [(m.role, m.content) for m in second.messages] == [
        ("system", "Be brief."),
        ("assistant", "Sure. Anything else? "),
        ("user", "Hours?"),
    ]
    assert ended.reason is EndReason.CALLER_HANGUP and call.summary["turns"] == 1


async def test_interrupt_aborts_the_stream_and_history_keeps_what_was_heard() -> None:
    """An interrupt while the Router streams aborts the request; the history keeps only
    Twilio's `utteranceUntilInterrupt` of that reply."""
    async with memory_services(_config(), gap_s=0.05) as services:  # type: ignore[arg-type]
        call = MemoryCall.start(services, MODE)
        await call.twilio.send(setup_frame(NUMBER, services))
        await _reply(call)
        await call.twilio.send('{"type":"prompt","voicePrompt":"Story?","last":true}')
        await call.phone_frames(1)  # the first play of the reply
        await call.twilio.send(
            '{"type":"interrupt","utteranceUntilInterrupt":"Su","durationUntilInterruptMs":90}'
        )
        await asyncio.sleep(0.2)
        await call.twilio.close()
        await call.ended()
        outcome = await services.take_outcome(CALL_SID)
    assert call.router.aborted == 1 and call.summary["barge_ins"] == 1
    assert outcome is not None and outcome.history[-1] == {"role": "assistant", "content": "Su"}


async def test_router_failure_plays_what_came_then_apologises_and_goes_on() -> None:
    """A Router error mid-reply: the audio received is played, then the apology; the call
    goes on to the next turn."""

    def script(request: ChatRequest) -> Sequence[RouterChunk | UpstreamError]:
        if request.messages[-1].content == "Break":
            return [*spoken("Well. "), UpstreamError(UpstreamFailure.DROPPED, "gone")]
        return default_script(request)

    async with memory_services(_config(), script=script) as services:  # type: ignore[arg-type]
        call = MemoryCall.start(services, MODE)
        await call.twilio.send(setup_frame(NUMBER, services))
        await _reply(call)
        await call.twilio.send('{"type":"prompt","voicePrompt":"Break","last":true}')
        failed = await _reply(call)
        assert [f["type"] for f in failed] == ["play", "text"]
        assert failed[-1]["token"] == "Sorry, a glitch."
        await call.twilio.send('{"type":"prompt","voicePrompt":"Again","last":true}')
        assert [f["type"] for f in await _reply(call)] == ["play", "play", "text"]
        await call.twilio.close()
        await call.ended()
    assert call.summary["upstream_errors"] == 1


async def test_setup_without_a_call_sid_or_token_is_refused() -> None:
    """A `setup` with no CallSid, or without the call's token, is closed before any request."""
    async with memory_services(_config()) as services:  # type: ignore[arg-type]
        for raw in ('{"type":"setup","sessionId":"VX1","customParameters":{}}',
                    setup_frame(NUMBER, services).replace('"token"', '"tokn"')):  # fmt: skip
            call = MemoryCall.start(services, MODE)
            await call.twilio.send(raw)
            await asyncio.wait_for(call.task, 5)
            assert call.phone.closed
        assert call.router.requests == []


async def test_failover_leg_restores_the_conversation_and_greets_with_the_failover_line() -> None:
    """A failover leg carries on the first leg's history and opens with failover_greeting."""
    async with memory_services(_config()) as services:  # type: ignore[arg-type]
        history = ({"role": "user", "content": "My order?"},)
        outcome = CallOutcome(EndReason.UPSTREAM_FAILED, "dropped", "realtime-passthrough", history)
        await services.keep_outcome(CALL_SID, outcome)
        call = MemoryCall.start(services, MODE)
        await call.twilio.send(setup_frame(NUMBER, services, failover_from="realtime-passthrough"))
        await _reply(call)
        await call.twilio.close()
        await call.ended()
    [greeting] = call.router.requests
    assert greeting.messages[1].content == "Sorry about that, I'm back. Where were we?"
    assert call.summary["reason"] == "caller_hangup"


async def test_action_uses_the_plan_voice_gave_the_call_even_after_a_reload() -> None:
    """`ended` + HandoffData dials the handoff of the plan /voice answered with, not the
    reloaded file's; `failed` reconnects once, then apologises."""
    async with memory_services(_config()) as services:  # type: ignore[arg-type]
        plan = services.config.current.plan_for(NUMBER, CALL_SID)
        assert plan is not None
        await services.remember_plan(CALL_SID, plan)
        services.config.replace(parse_config({"numbers": {NUMBER: {"mode": "relay-router"}}}))
        form = {"CallSid": CALL_SID, "To": NUMBER}
        ended = await MODE.action({**form, "SessionStatus": "ended", "HandoffData": "{}"},
                                  services)  # fmt: skip
        assert "<Dial>+18005550199</Dial>" in ended
        retry = await MODE.action({**form, "SessionStatus": "failed"}, services)
        assert "<ConversationRelay" in retry and 'value="2"' in retry
        apology = await MODE.action({**form, "SessionStatus": "failed", "attempt": "2"},
                                    services)  # fmt: skip
        assert "<Say>Sorry, a glitch.</Say><Hangup />" in apology


class _BufferedRouter:
    """A Router whose chunks have all arrived already: its stream never waits, like aiohttp
    reading SSE lines that came in one burst. Each chunk notes how often `other` ran."""

    def __init__(self) -> None:
        self.other_ran = 0
        self.seen: list[int] = []

    async def stream(self, request: ChatRequest) -> AsyncGenerator[RouterChunk, None]:
        for chunk in [*default_script(request), *spoken("And more. ", 400)]:
            self.seen.append(self.other_ran)
            yield chunk


async def test_a_burst_of_router_chunks_leaves_the_loop_to_other_calls_between_chunks() -> None:
    """A reply takes one chunk per event-loop step, so another call's audio never waits for
    a whole burst of buffered chunks to be decoded, resampled and sent."""
    async with memory_services(_config()) as services:  # type: ignore[arg-type]
        router = services.router = _BufferedRouter()
        call = MemoryCall.start(services, MODE)

        async def other_call() -> None:
            while True:
                router.other_ran += 1
                await asyncio.sleep(0)

        other = asyncio.create_task(other_call())
        await call.twilio.send(setup_frame(NUMBER, services))
        await _reply(call)
        other.cancel()
        await call.twilio.close()
        await call.ended()
    steps = router.seen
    assert len(steps) == 7 and all(b > a for a, b in pairwise(steps))
