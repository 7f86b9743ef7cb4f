"""What one fake Inworld Realtime session knows and says, with no I/O: the transcription models
it accepts, its config (the defaults, partial ``session.update``s deep-merged in, the audio
format its VAD reads), the decoding of an append frame, the caller's scripted transcripts and
the server events of a caller's turn. The session (``fake_realtime_connection.FakeSession``) sends
them.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from voiceagent.errors import ProtocolError
from voiceagent.protocols import inworld_realtime as rt
from voiceagent.protocols._wire import b64decode
from voiceagent.sim.fake_options import FakeRealtimeOptions

TRANSCRIPTION_MODELS = frozenset(
    {
        "inworld/inworld-stt-1",
        "assemblyai/u3-rt-pro",
        "assemblyai/universal-streaming-multilingual",
        "assemblyai/universal-streaming-english",
        "soniox/stt-rt-v4",
    }
)
_QUOTED = re.compile(r'"([^"]+)"')


def default_config() -> dict[str, Any]:
    """The session config before any ``session.update``."""
    return {
        "type": "realtime",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "turn_detection": {
                    "type": "semantic_vad",
                    "eagerness": "medium",
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "Dennis"},
        },
    }


def merge_config(base: dict[str, Any], update: dict[str, Any]) -> None:
    """Deep-merge a partial ``session`` into the current config (explicit nulls kept)."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge_config(base[key], value)
        else:
            base[key] = value


def transcription_model(session: dict[str, Any]) -> Any:
    """The transcription model a ``session.update`` asks for (None if it names none)."""
    return (((session.get("audio") or {}).get("input") or {}).get("transcription") or {}).get(
        "model"
    )


def vad_format(config: dict[str, Any]) -> tuple[bool, int]:
    """(µ-law?, sample rate) of the caller audio the config announces."""
    fmt = config["audio"]["input"].get("format")
    ulaw = rt.is_ulaw_format(fmt)
    rate = 8000 if ulaw else int((fmt or {}).get("rate", 24000)) if isinstance(fmt, dict) else 24000
    return ulaw, rate


def append_audio(raw: str) -> bytes:
    """The audio of an ``input_audio_buffer.append`` frame, read without the event model."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"invalid JSON: {exc}") from exc
    audio = obj.get("audio") if isinstance(obj, dict) else None
    if not isinstance(audio, str):
        raise ProtocolError("input_audio_buffer.append without audio")
    return b64decode(audio, "input_audio_buffer.append.audio")


def caller_transcript(opts: FakeRealtimeOptions, key: str, turn: int) -> str:
    """What the caller "said" in `turn` (1-based): the call's script, else the common one."""
    scripted = next(
        (t for sid, t in opts.call_transcripts.items() if sid in key),
        opts.transcripts,
    )
    return scripted[(turn - 1) % len(scripted)] if scripted else f"utterance {turn}"


def agent_answer(opts: FakeRealtimeOptions, turn: int) -> str:
    """What the agent answers in `turn` (1-based)."""
    answers = opts.answers
    return answers[(turn - 1) % len(answers)] if answers else f"answer {turn}"


def quoted(text: str) -> str | None:
    """The first double-quoted phrase of `text` (a client asking for exact words)."""
    found = _QUOTED.search(text)
    return found.group(1) if found else None


def error_event(code: str, message: str, param: str | None, kind: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {
            "type": kind,
            "code": code,
            "message": message,
            "param": param,
            "event_id": None,
        },
    }


def speech_started(item_id: str, ms: int) -> dict[str, Any]:
    return {"type": "input_audio_buffer.speech_started", "item_id": item_id, "audio_start_ms": ms}


def speech_stopped(item_id: str, ms: int) -> dict[str, Any]:
    return {"type": "input_audio_buffer.speech_stopped", "item_id": item_id, "audio_end_ms": ms}


def committed(item_id: str) -> dict[str, Any]:
    return {"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": None}


def transcription_completed(item_id: str, text: str) -> dict[str, Any]:
    return {
        "type": "conversation.item.input_audio_transcription.completed",
        "item_id": item_id,
        "content_index": 0,
        "transcript": text,
    }


def truncated(event: rt.ConversationItemTruncate) -> dict[str, Any]:
    return {
        "type": "conversation.item.truncated",
        "item_id": event.item_id,
        "content_index": event.content_index,
        "audio_end_ms": event.audio_end_ms,
    }
