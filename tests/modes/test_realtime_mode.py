"""realtime-passthrough driven inside the shared lifecycle through in-memory channels: the
test plays Twilio on one channel and Inworld on the session the in-memory connector hands
out. No sockets."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import orjson
import pytest
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from tests.modes.memory import (
    CALL_SID,
    MemoryCall,
    media_frame,
    memory_services,
    start_frame,
    stop_frame,
)
from voiceagent.config import parse_config
from voiceagent.errors import UpstreamError, UpstreamFailure
from voiceagent.modes.realtime_passthrough import RealtimePassthrough
from voiceagent.protocols import inworld_realtime as rt
from voiceagent.session.call import EndReason
from voiceagent.session.realtime_call import RealtimeCall
from voiceagent.store.live.call_state import CallOutcome

MODE = RealtimePassthrough()
NUMBER = "+18005550101"
CONFIG = parse_config({
    "defaults": {"agent": {"apology": "Sorry, a problem."}},
    "numbers": {
        NUMBER: {"mode": "realtime-passthrough", "realtime": {"mark_ms": 100},
                 "fallback_mode": "relay-router"},
        "+18005550102": {"mode": "relay-router"},
    },
})  # fmt: skip


def _audio_delta(rid: str, n: int = 800, payload: bytes | None = None) -> str:
    audio = b"\x7f" * n if payload is None else payload
    event = {"type": "response.output_audio.delta", "response_id": rid, "item_id": "i1",
             "output_index": 0, "content_index": 0,
             "delta": base64.b64encode(audio).decode()}  # fmt: skip
    return orjson.dumps(event).decode()


async def _inworld_session(call: MemoryCall) -> Any:
    """Accept the call's Inworld session; return its channel after the session.update."""
    _, upstream = await asyncio.wait_for(call.connector.sessions.get(), 5)
    update = rt.parse_client_event(await upstream.receive())
    assert isinstance(update, rt.SessionUpdate)
    return upstream


async def test_greeting_flows_with_marks_and_stop_flushes_and_closes() -> None:
    """The greeting is released by session.updated; deltas reach Twilio as media with marks;
    caller audio goes up in appends; `stop` flushes the rest and closes Inworld."""
    async with memory_services(CONFIG) as services:
        call = MemoryCall.start(services, MODE)
        await call.twilio.send('{"event":"connected","protocol":"Call","version":"1.0.0"}')
        await call.twilio.send(start_frame(NUMBER, services))
        upstream = await _inworld_session(call)
        await upstream.send('{"type":"session.updated","session":{}}')
        greeting = [rt.parse_client_event(await upstream.receive()) for _ in range(2)]
        assert isinstance(greeting[1], rt.ResponseCreate)
        await upstream.send('{"type":"response.created","response":{"id":"r1"}}')
        await upstream.send(_audio_delta("r1"))
        assert [f["event"] for f in await call.phone_frames(2)] == ["media", "mark"]
        for chunk in (1, 2, 3):
            await call.twilio.send(media_frame(b"\xff" * 160, chunk))
        await call.twilio.send(stop_frame())
        appends = [orjson.loads(await upstream.receive()) for _ in range(2)]
        assert [len(base64.b64decode(a["audio"])) for a in appends] == [320, 160]
        assert await upstream.receive() is None  # closed by us
        ended = await call.ended()
    assert ended.reason is EndReason.CALLER_HANGUP
    summary = call.summary
    assert summary["frames_in"] == 6 and summary["frames_out"] == 2 and summary["marks_out"] == 1


async def test_caller_audio_is_whole_and_in_order_when_inworld_reads_slowly() -> None:
    """While Inworld does not read, caller audio waits in the phone pump (bounded buffers, no
    frame dropped), and every byte still goes up in order once it reads."""
    async with memory_services(CONFIG) as services:
        call = MemoryCall.start(services, MODE)
        call.connector.buffer_frames = 3
        await call.twilio.send(start_frame(NUMBER, services))
        upstream = await _inworld_session(call)
        await call.twilio.send(media_frame(bytes([1]) * 160, 1))
        await call.twilio.send(media_frame(bytes([2]) * 160, 2))
        for chunk in range(3, 21):  # Inworld does not read: its buffer fills up
            await call.twilio.send(media_frame(bytes([chunk]) * 160, chunk))
        await call.twilio.send(stop_frame())
        heard = b""
        while (raw := await asyncio.wait_for(upstream.receive(), 5)) is not None:
            heard += base64.b64decode(orjson.loads(raw)["audio"])
        ended = await call.ended()
    assert heard == b"".join(bytes([chunk]) * 160 for chunk in range(1, 21))
    assert ended.reason is EndReason.CALLER_HANGUP and call.summary["frames_in"] == 22


async def test_agent_audio_is_whole_and_in_order_when_twilio_reads_slowly() -> None:
    """While Twilio does not read, agent audio waits in the upstream pump, and every byte still
    goes out in order, with its marks, once it reads."""
    async with memory_services(CONFIG) as services:
        call = MemoryCall.start(services, MODE, buffer_frames=4)
        await call.twilio.send(start_frame(NUMBER, services))
        upstream = await _inworld_session(call)
        await upstream.send('{"type":"response.created","response":{"id":"r1"}}')
        await asyncio.sleep(0.01)  # the pump has handled it and waits again
        await upstream.send(_audio_delta("r1", payload=bytes([1]) * 800))
        for n in range(2, 21):  # Twilio does not read: its buffer fills up
            await upstream.send(_audio_delta("r1", payload=bytes([n]) * 800))
        await upstream.send('{"type":"response.done","response":{"id":"r1","status":"completed"}}')
        heard, marks = b"", 0
        async with asyncio.timeout(5):
            while marks < 20:  # one per 100 ms delta (the number's mark_ms)
                frame = orjson.loads(await call.twilio.receive())
                if frame["event"] == "media":
                    heard += base64.b64decode(frame["media"]["payload"])
                marks += frame["event"] == "mark"
        await call.twilio.send(stop_frame())
        ended = await call.ended()
    assert heard == b"".join(bytes([n]) * 800 for n in range(1, 21))
    assert ended.reason is EndReason.CALLER_HANGUP and call.summary["frames_out"] == 40


async def test_a_mark_echo_moves_what_was_heard() -> None:
    """A mark echo (one per `mark_ms` of agent audio) marks the audio before it as heard, so
    the history keeps its text, and counts as a frame in."""
    async with memory_services(CONFIG) as services:
        call = MemoryCall.start(services, MODE)
        await call.twilio.send(start_frame(NUMBER, services))
        upstream = await _inworld_session(call)
        await upstream.send('{"type":"response.created","response":{"id":"r1"}}')
        transcript = {"type": "response.output_audio_transcript.delta", "response_id": "r1",
                      "item_id": "i1", "output_index": 0, "content_index": 0,
                      "delta": "Hello there."}  # fmt: skip
        await upstream.send(orjson.dumps(transcript).decode())
        await upstream.send(_audio_delta("r1"))
        _, mark = await call.phone_frames(2)
        echo = {"event": "mark", "sequenceNumber": "3", "streamSid": mark["streamSid"],
                "mark": mark["mark"]}  # fmt: skip
        await call.twilio.send(orjson.dumps(echo).decode())
        await call.twilio.send(stop_frame())
        ended = await call.ended()
    assert call.summary["frames_in"] == 3  # start, the echo, stop
    assert ended.history[-1] == {"role": "assistant", "content": "Hello there."}  # heard


async def test_session_updated_releases_the_greeting_in_the_call_log_context() -> None:
    """`session.updated` releases the greeting (`conversation.item.create`, then
    `response.create`), and what the machine logs meanwhile carries the call's SID although
    the sender's task has none."""
    async with memory_services(CONFIG) as services:
        call = MemoryCall.start(services, MODE)
        await call.twilio.send(start_frame(NUMBER, services))
        upstream = await _inworld_session(call)
        with capture_logs(processors=[merge_contextvars]) as logs:
            await upstream.send('{"type":"session.updated","session":{}}')
            sent = [orjson.loads(await asyncio.wait_for(upstream.receive(), 5)) for _ in "ab"]
        assert [f["type"] for f in sent] == ["conversation.item.create", "response.create"]
        ready = [entry for entry in logs if entry["event"] == "upstream_session_ready"]
        assert len(ready) == 1 and ready[0]["call_sid"] == CALL_SID
        await call.twilio.send(stop_frame())
        await call.ended()


async def test_a_fatal_inworld_error_ends_the_call_once() -> None:
    """A fatal Inworld error ends the call as an upstream failure, decided once: one error
    counted, one `upstream_failed` logged."""
    async with memory_services(CONFIG) as services:
        call = MemoryCall.start(services, MODE)
        await call.twilio.send(start_frame(NUMBER, services))
        upstream = await _inworld_session(call)
        await upstream.send('{"type":"session.updated","session":{}}')
        await asyncio.sleep(0.01)
        error = {"type": "error", "error": {"type": "session_error", "code": "session_expired",
                                            "message": "The session expired."}}  # fmt: skip
        with capture_logs() as logs:
            await upstream.send(orjson.dumps(error).decode())
            ended = await call.ended()
    assert ended.reason is EndReason.UPSTREAM_FAILED and ended.upstream_failure == "error"
    assert call.summary["upstream_errors"] == 1
    assert [entry["event"] for entry in logs].count("upstream_failed") == 1


async def test_a_large_delta_arrives_whole_with_its_mark() -> None:
    """A 48 KiB delta (64 KiB of base64, a socket buffer's worth) goes out whole, then its
    mark."""
    big = bytes(range(256)) * 192  # 48 KiB of µ-law: 64 KiB of base64
    async with memory_services(CONFIG) as services:
        call = MemoryCall.start(services, MODE)
        await call.twilio.send(start_frame(NUMBER, services))
        upstream = await _inworld_session(call)
        await upstream.send('{"type":"response.created","response":{"id":"r1"}}')
        await upstream.send(_audio_delta("r1", payload=big))
        media, mark = await call.phone_frames(2)
        await call.twilio.send(stop_frame())
        await call.ended()
    assert base64.b64decode(media["media"]["payload"]) == big and mark["event"] == "mark"


def _raises(*args: object) -> object:
    raise RuntimeError("a bug")


@pytest.mark.parametrize(
    ("owner", "name", "frame"),
    [
        (rt, "read_server_event", _audio_delta("r1")),  # the codec: the frame is declined
        (RealtimeCall, "receive_upstream", '{"type":"session.updated","session":{}}'),
    ],
    ids=["reading", "deciding"],
)
async def test_a_bug_reading_or_deciding_an_inworld_event_is_an_internal_error(
    monkeypatch: pytest.MonkeyPatch, owner: object, name: str, frame: str
) -> None:
    """A bug in our own code while an Inworld frame is read or decided ends the call as an
    internal error (logged with its traceback, so the caller hears the apology), never as an
    upstream failure: it must not fail over as if Inworld were down."""
    monkeypatch.setattr(owner, name, _raises)
    async with memory_services(CONFIG) as services:
        call = MemoryCall.start(services, MODE)
        await call.twilio.send(start_frame(NUMBER, services))
        upstream = await _inworld_session(call)
        await upstream.send(frame)
        ended = await call.ended()
    assert ended.reason is EndReason.INTERNAL_ERROR


async def test_stream_without_a_valid_token_is_refused_before_any_session() -> None:
    """A `start` without the per-call token /voice gave is closed (policy), no Inworld session."""
    async with memory_services(CONFIG) as services:
        call = MemoryCall.start(services, MODE)
        await call.twilio.send(start_frame(NUMBER, services, token="forged"))
        await asyncio.wait_for(call.task, 5)
        assert call.connector.sessions.empty() and call.phone.closed
        assert "token" in call.phone.close_reason


async def test_stream_for_a_number_of_another_mode_is_refused() -> None:
    """A relay number's call arriving on /media-stream is closed before any session opens."""
    async with memory_services(CONFIG) as services:
        call = MemoryCall.start(services, MODE)
        await call.twilio.send(start_frame("+18005550102", services))
        await asyncio.wait_for(call.task, 5)
        assert call.connector.sessions.empty() and call.phone.closed


async def test_refused_session_fails_over_through_the_action_callback() -> None:
    """An Inworld refusal ends the stream; the action answers ConversationRelay TwiML for the
    same call (the number's fallback), carrying the outcome for the new leg."""
    async with memory_services(CONFIG) as services:
        call = MemoryCall.start(services, MODE)
        call.connector.refuse = UpstreamError(UpstreamFailure.CAPACITY, "429", status=429)
        await call.twilio.send(start_frame(NUMBER, services))
        ended = await call.ended()
        assert ended.reason is EndReason.UPSTREAM_FAILED
        xml = await MODE.action({"CallSid": CALL_SID, "To": NUMBER}, services)
        assert "<ConversationRelay" in xml and 'value="realtime-passthrough"' in xml
        assert await services.take_outcome(CALL_SID) is not None  # kept for the relay leg


async def test_untyped_frame_does_not_end_a_working_call() -> None:
    """An Inworld frame with no `type` is counted, and the call goes on."""
    async with memory_services(CONFIG) as services:
        call = MemoryCall.start(services, MODE)
        await call.twilio.send(start_frame(NUMBER, services))
        upstream = await _inworld_session(call)
        await upstream.send('{"errorType":"SESSION_RESOURCES_EXHAUSTED"}')
        await upstream.send('{"type":"response.created","response":{"id":"r1"}}')
        await upstream.send(_audio_delta("r1"))
        assert [f["event"] for f in await call.phone_frames(2)] == ["media", "mark"]
        assert not call.task.done()
        await call.twilio.send(stop_frame())
        ended = await call.ended()
    assert ended.reason is EndReason.CALLER_HANGUP and call.summary["upstream_errors"] == 1


async def test_too_many_malformed_frames_end_the_call() -> None:
    """One bad-frame budget: past it the call ends as a protocol error."""
    async with memory_services(CONFIG) as services:
        call = MemoryCall.start(services, MODE)
        await call.twilio.send(start_frame(NUMBER, services))
        await _inworld_session(call)
        for _ in range(60):
            await call.twilio.send("{not json")
        ended = await call.ended()
    assert ended.reason is EndReason.PROTOCOL_ERROR and call.summary["bad_frames"] == 51


async def test_silent_phone_ends_the_call_and_its_session() -> None:
    """A caller that sends `start` and then nothing is ended after the idle timeout."""
    async with memory_services(CONFIG, phone_idle_timeout=0.3) as services:
        call = MemoryCall.start(services, MODE)
        await call.twilio.send(start_frame(NUMBER, services))
        upstream = await _inworld_session(call)
        ended = await call.ended()
        assert await upstream.receive() is None
    assert ended.reason is EndReason.CALLER_DISCONNECTED


async def test_cancellation_ends_the_call_as_drained() -> None:
    """A server drain cancelling the call records DRAINED and closes phone and Inworld."""
    async with memory_services(CONFIG) as services:
        call = MemoryCall.start(services, MODE)
        await call.twilio.send(start_frame(NUMBER, services))
        upstream = await _inworld_session(call)
        call.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call.task
        outcome = await services.take_outcome(CALL_SID)
        assert await upstream.receive() is None
    assert outcome is not None and outcome.reason is EndReason.DRAINED and call.phone.closed


@pytest.mark.parametrize(
    ("reason", "apology"),
    [(EndReason.UPSTREAM_FAILED, True), (EndReason.CALLER_HANGUP, False), (None, False)],
)
async def test_action_apologises_only_after_a_failure(
    reason: EndReason | None, apology: bool
) -> None:
    """`<Connect action>`: the apology after an upstream failure (no fallback here), else an
    empty response; the outcome is consumed."""
    config = parse_config({"defaults": {"agent": {"apology": "Sorry, a problem."}},
                           "numbers": {NUMBER: {"mode": "realtime-passthrough"}}})  # fmt: skip
    async with memory_services(config) as services:
        if reason is not None:
            await services.keep_outcome(CALL_SID, CallOutcome(reason, "dropped", MODE.name))
        xml = await MODE.action({"CallSid": CALL_SID, "To": NUMBER}, services)
        assert ("<Say>Sorry, a problem.</Say><Hangup />" in xml) is apology
        assert await services.take_outcome(CALL_SID) is None
