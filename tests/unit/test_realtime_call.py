"""The realtime-passthrough rules as a state machine: events in, frames and commands out.
No sockets, no event loop."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import orjson
import pytest

from voiceagent.config import parse_config
from voiceagent.errors import ProtocolError
from voiceagent.modes.realtime_setup import greeting_frames, session_update
from voiceagent.protocols import inworld_realtime as rt
from voiceagent.protocols import twilio_media as tm
from voiceagent.session.call import CallSession, EndReason
from voiceagent.session.commands import ReportTurns, SendPhone, SendUpstream, StopCall
from voiceagent.session.realtime_call import AppendChunker, RealtimeCall, error_is_fatal

SID = "MZ" + "b" * 32


def _plan(**agent: object) -> object:
    config = parse_config(
        {"numbers": {"+18005550101": {"mode": "realtime-passthrough", "agent": agent}}}
    )
    return config.plan_for("+18005550101", "CA1")


def _machine(mark_ms: float = 200, greeting: tuple[str, ...] = ()) -> RealtimeCall:
    call = CallSession(call_sid="CA1", number="+18005550101", mode="realtime-passthrough",
                       stream_sid=SID, record_transcripts=True)  # fmt: skip
    return RealtimeCall(call, append_ms=40, mark_ms=mark_ms, greeting=greeting)


def _delta(response_id: str, n_bytes: int = 800, item_id: str = "i1") -> rt.AudioDelta:
    payload = base64.b64encode(b"\x7f" * n_bytes).decode()
    return rt.AudioDelta(response_id, item_id, payload, n_bytes)


def _begin(m: RealtimeCall, rid: str, item_id: str = "i1") -> None:
    m.receive_upstream(rt.ResponseCreated(response=rt.ResponseInfo(id=rid)), 0.0)
    m.receive_upstream(
        rt.ResponseOutputItemAdded(response_id=rid, item=rt.Item(id=item_id, type="message")), 0.0
    )


def _events(frames: object) -> list[str]:
    return [orjson.loads(f)["event"] for f in frames]  # type: ignore[attr-defined]


def test_chunker_emits_exact_appends_and_keeps_the_remainder() -> None:
    """20 ms frames become 40 ms appends of 320 bytes; the remainder waits, then flushes."""
    chunker = AppendChunker(40)

    def audio(frames: Sequence[str]) -> list[bytes]:
        return [base64.b64decode(orjson.loads(f)["audio"]) for f in frames]

    assert chunker.feed(b"\x01" * 160) == ()
    assert audio(chunker.feed(b"\x02" * 160)) == [b"\x01" * 160 + b"\x02" * 160]
    assert audio(chunker.feed(b"\x03" * 700)) == [b"\x03" * 320, b"\x03" * 320]
    rest = chunker.flush()
    assert rest is not None and audio([rest]) == [b"\x03" * 60]
    assert chunker.flush() is None


def test_caller_media_becomes_appends_and_the_rest_is_flushed_at_the_end() -> None:
    """Caller audio goes upstream in appends of append_ms; the remainder when the phone ends."""
    m = _machine()
    assert m.receive_media(b"\x01" * 160) == ()
    [append] = m.receive_media(b"\x01" * 200)
    assert base64.b64decode(orjson.loads(append)["audio"]) == b"\x01" * 320
    [rest] = m.phone_ended()
    assert base64.b64decode(orjson.loads(rest)["audio"]) == b"\x01" * 40


def test_session_update_carries_ulaw_and_the_numbers_agent() -> None:
    """One session.update: µ-law both ways, the agent's models, voice and turn detection."""
    plan = _plan(voice="Sarah", llm_model="openai/gpt-4.1-nano",
                 turn_detection={"type": "semantic_vad", "eagerness": "low"})  # fmt: skip
    event = rt.parse_client_event(session_update(plan))  # type: ignore[arg-type]
    assert isinstance(event, rt.SessionUpdate)
    session = event.session
    assert session.model == "openai/gpt-4.1-nano" and session.audio is not None
    audio_in, audio_out = session.audio.input, session.audio.output
    assert audio_in is not None and audio_out is not None
    assert rt.is_ulaw_format(audio_in.format) and rt.is_ulaw_format(audio_out.format)
    assert audio_out.voice == "Sarah"
    td = audio_in.turn_detection
    assert td is not None and td.eagerness == "low" and td.interrupt_response is True


def test_manual_turn_detection_is_an_explicit_null() -> None:
    """turn_detection type none is sent as `null` (manual turns), not left out."""
    raw = orjson.loads(session_update(_plan(turn_detection={"type": "none"})))  # type: ignore[arg-type]
    assert raw["session"]["audio"]["input"]["turn_detection"] is None


def test_greeting_is_sent_once_when_the_session_is_configured() -> None:
    """session.updated releases the greeting frames, once; a greeting turn is timed."""
    frames = greeting_frames(_plan(greeting="Hi from Acme."))  # type: ignore[arg-type]
    assert '"Hi from Acme."' in orjson.loads(frames[0])["item"]["content"][0]["text"]
    m = _machine(greeting=frames)
    assert m.call.latency.current is not None and m.call.latency.current.kind == "greeting"
    first = m.receive_upstream(rt.SessionUpdated(), 1.0)
    assert first == [SendUpstream(frames[0]), SendUpstream(frames[1])]
    assert m.receive_upstream(rt.SessionUpdated(), 2.0) == []


def test_a_mark_goes_after_the_first_chunk_then_every_mark_ms() -> None:
    """Marks follow a response's first chunk, then every mark_ms of audio (100 ms chunks,
    200 ms marks), and the end of the response gets a closing mark."""
    m = _machine(mark_ms=200)
    _begin(m, "r1")
    sent = [_events(m.receive_audio(_delta("r1"), 1.0)) for _ in range(5)]
    assert sent == [["media", "mark"], ["media"], ["media", "mark"], ["media"], ["media", "mark"]]
    m.receive_audio(_delta("r1"), 1.0)  # 100 ms unmarked
    [closing] = m.receive_upstream(rt.OutputAudioDone(response_id="r1", item_id="i1"), 1.0)
    assert isinstance(closing, SendPhone) and orjson.loads(closing.frame)["event"] == "mark"
    assert m.call.counters.marks_out == 4


def test_mark_echoes_confirm_heard_text_and_the_heard_latency() -> None:
    """An echoed mark makes the text before it heard; the first echo times `heard`."""
    m = _machine(mark_ms=100)
    m.receive_upstream(rt.SpeechStopped(), 1.0)
    _begin(m, "r1")
    m.receive_transcript(rt.TranscriptDelta("r1", "Hello "))
    mark1 = orjson.loads(m.receive_audio(_delta("r1"), 1.1)[1])["mark"]["name"]
    m.receive_transcript(rt.TranscriptDelta("r1", "there."))
    m.receive_audio(_delta("r1"), 1.2)
    m.receive_phone(tm.Mark(stream_sid=SID, mark=tm.MarkInfo(name=mark1)), 1.5)
    assert m.call.history.heard_text("r1") == "Hello "
    timing = m.call.latency.current
    assert timing is not None and timing.heard_ms == 500.0 and timing.response_id == "r1"


def test_barge_in_clears_first_then_cancels_and_truncates_and_drops_late_audio() -> None:
    """speech_started while audio plays: clear, response.cancel (active), truncate at the
    heard ms; late deltas of the cancelled response are dropped."""
    m = _machine(mark_ms=100)
    _begin(m, "r1")
    mark1 = orjson.loads(m.receive_audio(_delta("r1"), 1.0)[1])["mark"]["name"]
    m.receive_audio(_delta("r1"), 1.0)
    m.receive_phone(tm.Mark(stream_sid=SID, mark=tm.MarkInfo(name=mark1)), 1.1)
    commands = m.receive_upstream(rt.SpeechStarted(), 1.2)
    frames = [orjson.loads(c.frame) for c in commands]  # type: ignore[union-attr]
    assert isinstance(commands[0], SendPhone) and frames[0]["event"] == "clear"
    assert [f.get("type") for f in frames[1:]] == ["response.cancel", "conversation.item.truncate"]
    assert frames[2]["audio_end_ms"] == 100
    assert m.receive_audio(_delta("r1"), 1.3) == () and m.stale_deltas == 1
    assert m.call.counters.barge_ins == 1


def test_no_cancel_once_the_response_is_done_but_audio_still_plays() -> None:
    """After response.done, a barge-in clears and truncates but sends no response.cancel."""
    m = _machine()
    _begin(m, "r1")
    m.receive_audio(_delta("r1"), 1.0)
    m.receive_upstream(rt.ResponseDone(response=rt.ResponseInfo(id="r1")), 1.0)
    commands = m.receive_upstream(rt.SpeechStarted(), 1.2)
    kinds = [orjson.loads(c.frame).get("type", "clear") for c in commands]  # type: ignore[union-attr]
    assert kinds == ["clear", "conversation.item.truncate"]


def test_speech_stopped_starts_a_turn_and_reports_the_previous_ones() -> None:
    """The caller's turn end starts a latency turn and asks for finished turns to be reported."""
    m = _machine()
    assert m.receive_upstream(rt.SpeechStopped(), 1.0) == [ReportTurns()]
    assert m.call.counters.turns == 1 and len(m.call.latency.turns) == 1


def test_untyped_capacity_frame_is_not_fatal_but_names_a_following_close() -> None:
    """{"errorType": ...} is counted, not fatal; if the session then closes, it was capacity."""
    m = _machine()
    frame = rt.UntypedFrame("SESSION_RESOURCES_EXHAUSTED", {})
    assert m.receive_upstream(frame, 1.0) == []
    assert m.call.end_reason is None and m.call.counters.upstream_errors == 1
    m.upstream_closed("closed (1011)")
    assert m.call.end_reason is EndReason.UPSTREAM_FAILED
    assert m.call.upstream_failure == "capacity"


def test_stop_ends_the_call_and_a_second_start_is_a_protocol_error() -> None:
    """Twilio `stop` ends the call (caller hang-up); a second `start` breaks the protocol."""
    m = _machine()
    start = tm.Start(stream_sid=SID, start=tm.StartInfo(account_sid="AC", stream_sid=SID,
                                                        call_sid="CA1"))  # fmt: skip
    with pytest.raises(ProtocolError):
        m.receive_phone(start, 1.0)
    stop = tm.Stop(stream_sid=SID, stop=tm.StopInfo(account_sid="AC", call_sid="CA1"))
    assert m.receive_phone(stop, 1.0) == [StopCall()]
    assert m.call.end_reason is EndReason.CALLER_HANGUP


def _error(code: str | None, kind: str = "invalid_request_error", param: str | None = None):  # type: ignore[no-untyped-def]
    return rt.ErrorEvent(error=rt.ErrorDetail(type=kind, code=code, param=param, message="m"))


def test_error_policy() -> None:
    """Cancel races are benign; errors before the session is ready or about the session are
    fatal (the call stops); errors about one request are not."""
    assert not error_is_fatal(_error("response_cancel_not_active"), session_ready=False)
    assert error_is_fatal(_error("server_error", "server_error"), session_ready=False)
    bad_model = _error("invalid_value", param="session.audio.input.transcription.model")
    assert error_is_fatal(bad_model, session_ready=True)
    assert not error_is_fatal(_error("invalid_value", param="audio_end_ms"), session_ready=True)
    m = _machine()
    assert m.receive_upstream(_error("server_error", "server_error"), 1.0) == [StopCall()]
    assert m.call.upstream_failure == "error"


def test_finished_responses_are_forgotten_so_state_stays_bounded() -> None:
    """Over many responses, the tracker keeps only the ones that can still change."""
    m = _machine(mark_ms=100)
    for i in range(200):
        rid = f"r{i}"
        _begin(m, rid)
        _, mark = m.receive_audio(_delta(rid), 1.0)
        m.receive_phone(tm.Mark(stream_sid=SID, mark=tm.MarkInfo(
            name=orjson.loads(mark)["mark"]["name"])), 1.0)  # fmt: skip
        m.receive_upstream(rt.ResponseDone(response=rt.ResponseInfo(id=rid)), 1.0)
    assert len(m.tracker) <= 2


def test_a_long_call_keeps_a_bounded_number_of_turns() -> None:
    """Turns reported to the sink are forgotten past KEPT_TURNS; indexes keep counting."""
    from voiceagent.session.latency import KEPT_TURNS

    m = _machine()
    for i in range(KEPT_TURNS * 3):
        m.receive_upstream(rt.SpeechStopped(), float(i))
        for turn in m.call.latency.turns[:-1]:
            turn.reported = True  # what the lifecycle does on ReportTurns
    turns = m.call.latency.turns
    assert len(turns) <= KEPT_TURNS + 1 and turns[-1].index == KEPT_TURNS * 3 - 1
