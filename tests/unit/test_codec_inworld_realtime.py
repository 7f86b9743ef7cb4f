"""Inworld Realtime codec: session config, client events, server events, aliases, dumps."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from voiceagent.errors import ProtocolError
from voiceagent.protocols import inworld_realtime as rt

SESSION_UPDATE_WIRE: dict[str, Any] = {
    "type": "session.update",
    "event_id": "optional-client-id",
    "session": {
        "type": "realtime",
        "model": "openai/gpt-4.1-mini",
        "instructions": "You are a helpful voice assistant.",
        "output_modalities": ["audio", "text"],
        "temperature": 0.8,
        "max_output_tokens": "inf",
        "audio": {
            "input": {
                "format": "g711_ulaw",
                "transcription": {"model": "assemblyai/universal-streaming-multilingual"},
                "noise_reduction": {"type": "near_field"},
                "turn_detection": {
                    "type": "semantic_vad",
                    "eagerness": "auto",
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {
                "format": "g711_ulaw",
                "model": "inworld-tts-2",
                "voice": "Sarah",
                "speed": 1.0,
            },
        },
        "tools": [
            {"type": "function", "name": "get_weather", "description": "...", "parameters": {}}
        ],
        "tool_choice": "auto",
        "providerData": {"tts": {"segmenter_strategy": "sentence"}},
    },
}


def _parse(wire: dict[str, Any]) -> rt.ParsedServerEvent:
    return rt.parse_server_event(orjson.dumps(wire))


# --- session config and client events ------------------------------------------------------


def test_session_update_parses_the_documented_body() -> None:
    """The documented session.update body parses, providerData included."""
    event = rt.parse_client_event(orjson.dumps(SESSION_UPDATE_WIRE))
    assert isinstance(event, rt.SessionUpdate)
    session = event.session
    assert session.model == "openai/gpt-4.1-mini"
    assert session.max_output_tokens == "inf"
    assert session.provider_data == {"tts": {"segmenter_strategy": "sentence"}}
    assert session.audio and session.audio.input and session.audio.output
    assert session.audio.input.turn_detection
    assert session.audio.input.turn_detection.eagerness == "auto"
    assert session.audio.output.voice == "Sarah"


def test_session_update_dump_round_trips_exactly() -> None:
    """Dumping the parsed documented body gives the same JSON back (providerData camelCase)."""
    event = rt.parse_client_event(orjson.dumps(SESSION_UPDATE_WIRE))
    assert orjson.loads(rt.dump(event)) == SESSION_UPDATE_WIRE


def test_snake_case_provider_data_is_ignored_like_the_real_server() -> None:
    """`provider_data` (snake_case) is silently dropped, as Inworld's Go server does."""
    raw = '{"type":"session.update","session":{"provider_data":{"tts":{}}}}'
    event = rt.parse_client_event(raw)
    assert isinstance(event, rt.SessionUpdate)
    assert event.session.provider_data is None


def test_legacy_model_id_is_accepted() -> None:
    """The older `modelId` session field is read as `model`."""
    event = rt.parse_client_event('{"type":"session.update","session":{"modelId":"openai/x"}}')
    assert isinstance(event, rt.SessionUpdate)
    assert event.session.model == "openai/x"


def test_explicit_null_turn_detection_survives_dump() -> None:
    """turn_detection=None (manual mode) dumps as null, while an unset one is left out."""
    manual = rt.SessionConfig(audio=rt.AudioConfig(input=rt.AudioInput(turn_detection=None)))
    unset = rt.SessionConfig(audio=rt.AudioConfig(input=rt.AudioInput(format="g711_ulaw")))
    assert orjson.loads(rt.dump(rt.SessionUpdate(session=manual)))["session"]["audio"] == {
        "input": {"turn_detection": None}
    }
    assert orjson.loads(rt.dump(rt.SessionUpdate(session=unset)))["session"]["audio"] == {
        "input": {"format": "g711_ulaw"}
    }
    parsed = rt.parse_client_event(rt.dump(rt.SessionUpdate(session=manual)))
    assert isinstance(parsed, rt.SessionUpdate) and parsed.session == manual


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("g711_ulaw", True),
        ({"type": "audio/pcmu"}, True),
        (rt.AudioFormatSpec(type="audio/pcmu"), True),
        ("g711_alaw", False),
        ({"type": "audio/pcm", "rate": 24000}, False),
        (rt.AudioFormatSpec(type="audio/pcma"), False),
        (None, False),
    ],
)
def test_is_ulaw_format_accepts_both_forms(fmt: Any, expected: bool) -> None:
    """is_ulaw_format recognises µ-law in the legacy string and the GA object form only."""
    assert rt.is_ulaw_format(fmt) is expected


def test_object_format_parses_into_a_spec() -> None:
    """A GA object audio format parses into AudioFormatSpec and counts as µ-law."""
    raw = '{"type":"session.update","session":{"audio":{"input":{"format":{"type":"audio/pcmu"}}}}}'
    event = rt.parse_client_event(raw)
    assert isinstance(event, rt.SessionUpdate)
    assert event.session.audio and event.session.audio.input
    assert event.session.audio.input.format == rt.AudioFormatSpec(type="audio/pcmu")
    assert rt.is_ulaw_format(event.session.audio.input.format)


@pytest.mark.parametrize(
    ("wire", "model"),
    [
        ({"type": "input_audio_buffer.append", "audio": "AAA="}, rt.InputAudioBufferAppend),
        ({"type": "input_audio_buffer.commit"}, rt.InputAudioBufferCommit),
        ({"type": "input_audio_buffer.clear", "event_id": "e1"}, rt.InputAudioBufferClear),
        (
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "Hello"}],
                },
            },
            rt.ConversationItemCreate,
        ),
        (
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": "call_1", "output": "{}"},
            },
            rt.ConversationItemCreate,
        ),
        (
            {
                "type": "conversation.item.truncate",
                "event_id": "e2",
                "item_id": "item_1",
                "content_index": 0,
                "audio_end_ms": 1234,
            },
            rt.ConversationItemTruncate,
        ),
        ({"type": "conversation.item.delete", "item_id": "i"}, rt.ConversationItemDelete),
        ({"type": "conversation.item.retrieve", "item_id": "i"}, rt.ConversationItemRetrieve),
        ({"type": "response.create"}, rt.ResponseCreate),
        (
            {"type": "response.create", "response": {"instructions": "Be cheerful."}},
            rt.ResponseCreate,
        ),
        ({"type": "response.cancel"}, rt.ResponseCancel),
        ({"type": "response.cancel", "response_id": "resp_1"}, rt.ResponseCancel),
    ],
)
def test_client_events_parse_and_dump_back(wire: dict[str, Any], model: type[Any]) -> None:
    """Each documented client event parses into its model and dumps back to the same JSON."""
    event = rt.parse_client_event(orjson.dumps(wire))
    assert isinstance(event, model)
    assert orjson.loads(rt.dump(event)) == wire


@pytest.mark.parametrize(
    "raw",
    [
        "nope",
        "[]",
        '{"type":"session.delete"}',
        '{"audio":"AAA="}',
        '{"type":"input_audio_buffer.append"}',
        '{"type":"conversation.item.truncate","item_id":"i"}',
        '{"type":"session.update"}',
    ],
)
def test_parse_client_event_rejects_bad_events(raw: str) -> None:
    """Bad JSON, unknown types and missing required fields raise ProtocolError."""
    with pytest.raises(ProtocolError):
        rt.parse_client_event(raw)


def test_item_helpers_build_documented_items() -> None:
    """Item.user_text and Item.function_call_output dump to the documented item shapes."""
    create = rt.ConversationItemCreate(item=rt.Item.user_text("Hi there!"))
    assert orjson.loads(rt.dump(create)) == {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Hi there!"}],
        },
    }
    output = rt.Item.function_call_output("call_1", '{"temp":21}')
    assert orjson.loads(rt.dump(output)) == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": '{"temp":21}',
    }


def test_dump_append_matches_the_model_and_decodes() -> None:
    """dump_append builds the same frame as the model, and audio_bytes() decodes it back."""
    audio = bytes(range(256)) * 2
    fast = rt.dump_append(audio)
    event = rt.parse_client_event(fast)
    assert isinstance(event, rt.InputAudioBufferAppend)
    assert orjson.loads(fast) == orjson.loads(rt.dump(rt.InputAudioBufferAppend(audio=event.audio)))
    assert event.audio_bytes() == audio


# --- server events -------------------------------------------------------------------------

SERVER_EXAMPLES: list[tuple[dict[str, Any], type[Any]]] = [
    (
        {"event_id": "evt_1", "type": "session.created", "session": {"id": "sess_1", "voice": "x"}},
        rt.SessionCreated,
    ),
    ({"type": "session.updated"}, rt.SessionUpdated),
    (
        {"type": "input_audio_buffer.speech_started", "item_id": "item_u1", "audio_start_ms": 1200},
        rt.SpeechStarted,
    ),
    (
        {"type": "input_audio_buffer.speech_stopped", "item_id": "item_u1", "audio_end_ms": 2900},
        rt.SpeechStopped,
    ),
    (
        {"type": "input_audio_buffer.committed", "previous_item_id": None, "item_id": "item_u1"},
        rt.InputAudioBufferCommitted,
    ),
    ({"type": "input_audio_buffer.cleared"}, rt.InputAudioBufferCleared),
    (
        {
            "type": "conversation.item.added",
            "item": {
                "id": "item_u1",
                "object": "realtime.item",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_audio", "transcript": None}],
            },
        },
        rt.ConversationItemAdded,
    ),
    (
        {"type": "conversation.item.done", "item": {"id": "item_u1", "type": "message"}},
        rt.ConversationItemDone,
    ),
    (
        {
            "type": "conversation.item.truncated",
            "item_id": "a1",
            "content_index": 0,
            "audio_end_ms": 900,
        },
        rt.ConversationItemTruncated,
    ),
    (
        {
            "type": "conversation.item.input_audio_transcription.delta",
            "item_id": "u1",
            "content_index": 0,
            "delta": "what",
        },
        rt.TranscriptionDelta,
    ),
    (
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u1",
            "content_index": 0,
            "transcript": "What time is it?",
        },
        rt.TranscriptionCompleted,
    ),
    (
        {
            "type": "response.created",
            "response": {
                "id": "resp_1",
                "object": "realtime.response",
                "status": "in_progress",
                "output": [],
                "usage": None,
            },
        },
        rt.ResponseCreated,
    ),
    (
        {
            "type": "response.output_item.added",
            "response_id": "resp_1",
            "output_index": 0,
            "item": {"id": "item_a1", "type": "message", "role": "assistant", "content": []},
        },
        rt.ResponseOutputItemAdded,
    ),
    (
        {
            "type": "response.output_item.done",
            "response_id": "resp_1",
            "output_index": 0,
            "item": {"id": "item_a1", "type": "message", "role": "assistant"},
        },
        rt.ResponseOutputItemDone,
    ),
    (
        {
            "type": "response.content_part.added",
            "response_id": "r",
            "item_id": "a",
            "output_index": 0,
            "content_index": 0,
            "part": {"type": "audio", "transcript": ""},
        },
        rt.ContentPartAdded,
    ),
    (
        {
            "type": "response.content_part.done",
            "response_id": "r",
            "item_id": "a",
            "part": {"type": "audio", "transcript": "Hello there."},
        },
        rt.ContentPartDone,
    ),
    (
        {
            "type": "response.output_audio.delta",
            "response_id": "r",
            "item_id": "a",
            "output_index": 0,
            "content_index": 0,
            "delta": "AAE=",
        },
        rt.OutputAudioDelta,
    ),
    (
        {"type": "response.output_audio.done", "response_id": "r", "item_id": "a"},
        rt.OutputAudioDone,
    ),
    (
        {
            "type": "response.output_audio_transcript.delta",
            "response_id": "r",
            "item_id": "a",
            "delta": "Hello ",
        },
        rt.OutputAudioTranscriptDelta,
    ),
    (
        {
            "type": "response.output_audio_transcript.done",
            "response_id": "r",
            "item_id": "a",
            "transcript": "Hello there.",
        },
        rt.OutputAudioTranscriptDone,
    ),
    (
        {"type": "response.output_text.delta", "response_id": "r", "item_id": "a", "delta": "Hi"},
        rt.OutputTextDelta,
    ),
    (
        {"type": "response.output_text.done", "response_id": "r", "item_id": "a", "text": "Hi!"},
        rt.OutputTextDone,
    ),
    (
        {
            "type": "response.function_call_arguments.delta",
            "response_id": "r",
            "item_id": "f",
            "call_id": "c",
            "delta": "{",
        },
        rt.FunctionCallArgumentsDelta,
    ),
    (
        {
            "type": "response.function_call_arguments.done",
            "response_id": "r",
            "item_id": "f",
            "call_id": "c",
            "arguments": "{}",
        },
        rt.FunctionCallArgumentsDone,
    ),
    (
        {
            "type": "response.done",
            "response": {
                "id": "resp_1",
                "status": "cancelled",
                "status_details": {"type": "cancelled", "reason": "turn_detected"},
            },
            "usage": {"total_tokens": 1},
        },
        rt.ResponseDone,
    ),
    (
        {
            "type": "error",
            "error": {
                "type": "server_error",
                "code": None,
                "message": "Failed.",
                "param": None,
                "event_id": None,
            },
        },
        rt.ErrorEvent,
    ),
    ({"type": "ping", "event_id": "p", "timestamp": 1750000000000}, rt.Ping),
    (
        {"type": "response.backchannel.audio.delta", "backchannel_id": "b1", "delta": "AAA="},
        rt.BackchannelAudioDelta,
    ),
    (
        {"type": "response.backchannel.audio.done", "backchannel_id": "b1", "phrase": "uh-huh"},
        rt.BackchannelAudioDone,
    ),
    (
        {
            "type": "response.backchannel.skipped",
            "backchannel_id": "b1",
            "reason": "deadline_missed",
        },
        rt.BackchannelSkipped,
    ),
]


@pytest.mark.parametrize(("wire", "model"), SERVER_EXAMPLES)
def test_documented_server_events_parse_and_round_trip(
    wire: dict[str, Any], model: type[Any]
) -> None:
    """Each documented server event parses into its model and survives dump() then parse."""
    event = _parse(wire)
    assert isinstance(event, model)
    assert isinstance(event, rt.RealtimeEvent)
    assert rt.parse_server_event(rt.dump(event)) == event


def test_every_server_event_model_is_reachable() -> None:
    """The examples cover every model of the ServerEvent union, so none is left undispatched."""
    members = set(rt.ServerEvent.__args__)
    assert members == {model for _, model in SERVER_EXAMPLES}


@pytest.mark.parametrize(
    ("beta", "model", "field", "value"),
    [
        ("response.audio.delta", rt.OutputAudioDelta, "delta", "AAE="),
        ("response.audio.done", rt.OutputAudioDone, "item_id", "a"),
        ("response.audio_transcript.delta", rt.OutputAudioTranscriptDelta, "delta", "Hi"),
        ("response.audio_transcript.done", rt.OutputAudioTranscriptDone, "transcript", "Hi."),
        ("response.text.delta", rt.OutputTextDelta, "delta", "Hi"),
        ("response.text.done", rt.OutputTextDone, "text", "Hi."),
    ],
)
def test_beta_type_names_map_to_the_ga_models(
    beta: str, model: type[Any], field: str, value: str
) -> None:
    """Beta event names (response.audio.delta ...) parse into the same model as the GA names."""
    event = _parse({"type": beta, "response_id": "r", "item_id": "a", field: value})
    assert isinstance(event, model)
    assert getattr(event, field) == value
    assert event.type == beta


def test_output_audio_delta_decodes_audio() -> None:
    """OutputAudioDelta.audio() returns the base64-decoded bytes."""
    pcm = b"\x00\x01" * 100
    event = _parse({"type": "response.output_audio.delta", "delta": base64.b64encode(pcm).decode()})
    assert isinstance(event, rt.OutputAudioDelta)
    assert event.audio() == pcm


def test_output_audio_delta_rejects_invalid_base64() -> None:
    """OutputAudioDelta.audio() raises ProtocolError on invalid base64."""
    event = _parse({"type": "response.output_audio.delta", "delta": "@@@"})
    assert isinstance(event, rt.OutputAudioDelta)
    with pytest.raises(ProtocolError):
        event.audio()


def test_error_event_exposes_nested_code_and_message() -> None:
    """A nested error exposes .code and .message."""
    event = _parse(
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "response_cancel_not_active",
                "message": "No active response",
            },
        }
    )
    assert isinstance(event, rt.ErrorEvent)
    assert (event.code, event.message) == ("response_cancel_not_active", "No active response")


def test_error_event_exposes_top_level_message() -> None:
    """A flat error with a top-level message exposes it as .message and has no code."""
    event = _parse({"type": "error", "message": "Tool calling is restricted"})
    assert isinstance(event, rt.ErrorEvent)
    assert (event.code, event.message) == (None, "Tool calling is restricted")
    assert orjson.loads(rt.dump(event)) == {
        "type": "error",
        "message": "Tool calling is restricted",
    }


def test_unknown_type_is_returned_not_raised() -> None:
    """An undocumented event type comes back as UnknownEvent carrying the raw frame."""
    event = _parse({"type": "rate_limits.updated", "rate_limits": []})
    assert event == rt.UnknownEvent(
        "rate_limits.updated", {"type": "rate_limits.updated", "rate_limits": []}
    )


def test_frame_without_type_is_an_untyped_frame() -> None:
    """A frame with no `type` (capacity exhausted) comes back as UntypedFrame with errorType."""
    event = rt.parse_server_event('{"errorType":"SESSION_RESOURCES_EXHAUSTED"}')
    assert isinstance(event, rt.UntypedFrame)
    assert event.error_type == "SESSION_RESOURCES_EXHAUSTED"
    assert orjson.loads(rt.dump(event)) == {"errorType": "SESSION_RESOURCES_EXHAUSTED"}
    assert rt.parse_server_event("{}") == rt.UntypedFrame(None, {})


@pytest.mark.parametrize(
    "raw",
    [
        "{broken",
        "[1]",
        "null",
        '{"type":"response.created"}',
        '{"type":"response.output_audio.delta","delta":5}',
        '{"type":"conversation.item.truncated","item_id":"a"}',
    ],
)
def test_parse_server_event_rejects_bad_frames(raw: str) -> None:
    """Bad JSON, non-objects and known types with bad fields raise ProtocolError."""
    with pytest.raises(ProtocolError):
        rt.parse_server_event(raw)


def test_server_session_carries_id() -> None:
    """session.created exposes the server's session id and config."""
    event = _parse(
        {
            "type": "session.created",
            "session": {
                "id": "sess_9",
                "type": "realtime",
                "audio": {"output": {"voice": "Dennis"}},
            },
        }
    )
    assert isinstance(event, rt.SessionCreated)
    assert event.session and event.session.id == "sess_9"
    assert event.session.audio and event.session.audio.output
    assert event.session.audio.output.voice == "Dennis"
