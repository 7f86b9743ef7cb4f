"""Pure helpers of realtime-passthrough: append batching, session.update, frames, error policy."""

from __future__ import annotations

import base64

import orjson
import pytest

from voiceagent.config import parse_config
from voiceagent.errors import ProtocolError, UpstreamFailure, failure_for_status
from voiceagent.modes import realtime_frames as rf
from voiceagent.protocols import inworld_realtime as rt
from voiceagent.protocols import twilio_media as tm
from voiceagent.protocols._wire import loads_object
from voiceagent.transport.inworld_realtime import session_key, session_url


def _plan(**agent: object) -> object:
    config = parse_config(
        {
            "numbers": {
                "+18005550101": {
                    "mode": "realtime-passthrough",
                    "agent": agent,
                    "realtime": {"append_ms": 60},
                }
            }
        }
    )
    return config.plan_for("+18005550101", "CA1")


def test_chunker_emits_exact_appends_and_keeps_the_remainder() -> None:
    """20 ms frames become 40 ms appends of 320 bytes; the remainder waits, then flushes."""
    chunker = rf.AppendChunker(40)
    assert chunker.feed(b"\x01" * 160) == []
    [chunk] = chunker.feed(b"\x02" * 160)
    assert chunk == b"\x01" * 160 + b"\x02" * 160
    assert chunker.feed(b"\x03" * 500) == [b"\x03" * 320]
    assert chunker.pending == 180 and chunker.flush() == b"\x03" * 180 and chunker.pending == 0


def test_session_update_carries_ulaw_and_the_numbers_agent() -> None:
    """One session.update: µ-law both ways, the agent's models, voice and turn detection."""
    plan = _plan(
        voice="Sarah",
        llm_model="openai/gpt-4.1-nano",
        turn_detection={"type": "semantic_vad", "eagerness": "low"},
    )
    event = rt.parse_client_event(rf.session_update(plan))  # type: ignore[arg-type]
    assert isinstance(event, rt.SessionUpdate)
    session = event.session
    assert session.model == "openai/gpt-4.1-nano" and session.audio is not None
    audio_in, audio_out = session.audio.input, session.audio.output
    assert audio_in is not None and audio_out is not None
    assert rt.is_ulaw_format(audio_in.format) and rt.is_ulaw_format(audio_out.format)
    assert audio_out.voice == "Sarah" and audio_out.model == "inworld-tts-2"
    assert audio_in.transcription is not None
    assert audio_in.transcription.model == "inworld/inworld-stt-1"
    td = audio_in.turn_detection
    assert td is not None and td.eagerness == "low"
    assert td.create_response is True and td.interrupt_response is True


def test_manual_turn_detection_is_an_explicit_null() -> None:
    """turn_detection type none is sent as `null` (manual turns), not left out."""
    raw = orjson.loads(rf.session_update(_plan(turn_detection={"type": "none"})))  # type: ignore[arg-type]
    assert raw["session"]["audio"]["input"]["turn_detection"] is None


def test_greeting_frames_ask_for_the_configured_greeting() -> None:
    """The greeting is a user text item naming the greeting, then response.create."""
    item, create = rf.greeting_frames(_plan(greeting="Hi from Acme."))  # type: ignore[arg-type]
    assert '"Hi from Acme."' in orjson.loads(item)["item"]["content"][0]["text"]
    assert orjson.loads(create) == {"type": "response.create"}


def test_audio_delta_is_forwarded_verbatim_as_twilio_media() -> None:
    """An audio delta is read without a model and becomes a valid Twilio media frame."""
    payload = base64.b64encode(b"\x7f" * 800).decode()
    obj = {
        "type": "response.output_audio.delta",
        "response_id": "r1",
        "item_id": "i1",
        "delta": payload,
    }
    delta = rf.audio_delta(obj)
    assert (delta.response_id, delta.item_id, delta.n_bytes) == ("r1", "i1", 800)
    frame = tm.parse_outbound(rf.media_frame("MZ1", delta.payload))
    assert isinstance(frame, tm.OutMedia) and frame.media.payload == payload


@pytest.mark.parametrize("payload", ["@@@", "YWJ", "YW Jj", 42, None])
def test_bad_base64_is_a_protocol_error(payload: object) -> None:
    """Invalid base64 in caller media or agent audio raises ProtocolError."""
    with pytest.raises(ProtocolError):
        rf.media_audio({"event": "media", "media": {"payload": payload}})
    with pytest.raises(ProtocolError):
        rf.audio_delta({"type": "response.output_audio.delta", "delta": payload})


def test_load_frame_rejects_non_objects() -> None:
    """Bad JSON and JSON that is not an object are protocol errors."""
    for raw in ("not json", "[1]", '"x"'):
        with pytest.raises(ProtocolError):
            loads_object(raw, "twilio media streams")


def _error(
    code: str | None, kind: str = "invalid_request_error", param: str | None = None
) -> rt.ErrorEvent:
    return rt.ErrorEvent(error=rt.ErrorDetail(type=kind, code=code, param=param, message="m"))


def test_error_policy() -> None:
    """Cancel races are benign; errors before the session is ready or about the session are
    fatal; errors about one request are not."""
    assert not rf.error_is_fatal(_error("response_cancel_not_active"), session_ready=False)
    assert rf.error_is_fatal(_error("server_error", "server_error"), session_ready=False)
    bad_model = _error("invalid_value", param="session.audio.input.transcription.model")
    assert rf.error_is_fatal(bad_model, session_ready=True)
    assert not rf.error_is_fatal(_error("invalid_value", param="audio_end_ms"), session_ready=True)
    assert not rf.error_is_fatal(_error(None, "server_error"), session_ready=True)


def test_upgrade_statuses_map_to_failures() -> None:
    """401/403 auth, 429 rate limited, 5xx unavailable, other 4xx error."""
    assert failure_for_status(401) is UpstreamFailure.AUTH
    assert failure_for_status(403) is UpstreamFailure.AUTH
    assert failure_for_status(429) is UpstreamFailure.RATE_LIMITED
    assert failure_for_status(503) is UpstreamFailure.UNAVAILABLE
    assert failure_for_status(404) is UpstreamFailure.ERROR


def test_session_url_adds_a_unique_key_and_protocol() -> None:
    """Each call gets its own key (naming the CallSid) and protocol=realtime."""
    a, b = session_key("CA1"), session_key("CA1")
    assert a != b and "CA1" in a
    url = session_url("wss://api.inworld.ai/api/v1/realtime/session", a)
    assert url.query["key"] == a and url.query["protocol"] == "realtime"
