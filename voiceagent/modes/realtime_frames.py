"""Pure per-call helpers of realtime-passthrough: frames in and out, batching, error policy.

No I/O. The hot path (caller media in, agent audio deltas out) avoids pydantic: frames are
decoded once with orjson and the fields needed are read directly; everything else goes
through the protocol codecs.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Any

from voiceagent.audio import ulaw_bytes
from voiceagent.config import CallPlan
from voiceagent.errors import ProtocolError
from voiceagent.protocols import inworld_realtime as rt

ULAW = "g711_ulaw"
"""The session's audio format both ways: Inworld's own Twilio example uses the legacy string."""

BENIGN_ERROR_CODES = frozenset(
    {"response_cancel_not_active", "conversation_already_has_active_response"}
)
"""Error codes that race with barge-in and mean nothing went wrong."""

CAPACITY_ERROR_TYPES = frozenset({"SESSION_RESOURCES_EXHAUSTED"})
"""Untyped ``errorType`` frames meaning the account's concurrent-session cap was hit."""

AUDIO_DELTA_TYPES = frozenset({"response.output_audio.delta", "response.audio.delta"})
TRANSCRIPT_DELTA_TYPES = frozenset(
    {"response.output_audio_transcript.delta", "response.audio_transcript.delta"}
)


def decode_b64(data: Any, what: str) -> bytes:
    """Strict base64 (alphabet and padding), or ProtocolError."""
    if not isinstance(data, str):
        raise ProtocolError(f"{what}: expected a base64 string")
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except ValueError as exc:
        raise ProtocolError(f"{what}: invalid base64: {exc}") from exc


def media_audio(obj: dict[str, Any]) -> bytes:
    """The µ-law bytes of a Twilio ``media`` frame (fast path, no model)."""
    media = obj.get("media")
    if not isinstance(media, dict):
        raise ProtocolError("media frame without a media object")
    return decode_b64(media.get("payload"), "media.payload")


@dataclass(frozen=True, slots=True)
class AudioDelta:
    """One agent audio delta, kept as the base64 Inworld sent (forwarded to Twilio as-is)."""

    response_id: str
    item_id: str | None
    payload: str
    n_bytes: int


def audio_delta(obj: dict[str, Any]) -> AudioDelta:
    """Read an audio delta frame without a model; ProtocolError for a bad payload."""
    payload = obj.get("delta")
    n_bytes = len(decode_b64(payload, "response.output_audio.delta"))
    item_id = obj.get("item_id")
    return AudioDelta(
        str(obj.get("response_id") or ""),
        item_id if isinstance(item_id, str) else None,
        payload,  # type: ignore[arg-type]  # decode_b64 proved it is a str
        n_bytes,
    )


def media_frame(stream_sid: str, payload_b64: str) -> str:
    """The Twilio ``media`` frame for already-base64 audio (what Inworld sent, verbatim)."""
    return (
        '{"event":"media","streamSid":"'
        + stream_sid
        + '","media":{"payload":"'
        + payload_b64
        + '"}}'
    )


class AppendChunker:
    """Batches caller audio into appends of exactly ``append_ms`` (a remainder waits)."""

    __slots__ = ("_buffer", "size")

    def __init__(self, append_ms: int) -> None:
        self.size = ulaw_bytes(append_ms)
        self._buffer = bytearray()

    def feed(self, audio: bytes) -> list[bytes]:
        """Add caller audio; return the appends now complete (usually none or one)."""
        buffer = self._buffer
        buffer += audio
        if len(buffer) < self.size:
            return []
        chunks = []
        while len(buffer) >= self.size:
            chunks.append(bytes(buffer[: self.size]))
            del buffer[: self.size]
        return chunks

    def flush(self) -> bytes:
        """The remainder (shorter than one append), emptied."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest

    @property
    def pending(self) -> int:
        return len(self._buffer)


def session_update(plan: CallPlan) -> str:
    """The one ``session.update`` of a call: µ-law both ways and the number's agent."""
    agent = plan.agent
    td = agent.turn_detection
    turn_detection = (
        None
        if td.type == "none"
        else rt.TurnDetection(
            type=td.type, eagerness=td.eagerness, create_response=True, interrupt_response=True
        )
    )
    audio_in = rt.AudioInput(
        format=ULAW,
        transcription=rt.TranscriptionConfig(model=agent.transcription_model),
        turn_detection=turn_detection,
    )
    session = rt.SessionConfig(
        model=agent.llm_model,
        instructions=agent.instructions,
        output_modalities=["audio", "text"],
        temperature=agent.temperature,
        audio=rt.AudioConfig(
            input=audio_in,
            output=rt.AudioOutput(format=ULAW, model=agent.tts_model, voice=agent.voice),
        ),
    )
    return rt.dump(rt.SessionUpdate(session=session))


def greeting_instruction(greeting: str) -> str:
    """The user-side text that makes the agent open the call with the configured greeting."""
    return f'The phone call has just been answered. Greet the caller by saying: "{greeting}"'


def greeting_frames(plan: CallPlan) -> tuple[str, str]:
    """``conversation.item.create`` with the greeting instruction, then ``response.create``."""
    item = rt.ConversationItemCreate(
        item=rt.Item.user_text(greeting_instruction(plan.agent.greeting))
    )
    return rt.dump(item), rt.dump(rt.ResponseCreate())


def cancel_frame(response_id: str) -> str:
    return rt.dump(rt.ResponseCancel(response_id=response_id or None))


def truncate_frame(item_id: str, audio_end_ms: int, content_index: int = 0) -> str:
    return rt.dump(
        rt.ConversationItemTruncate(
            item_id=item_id, content_index=content_index, audio_end_ms=audio_end_ms
        )
    )


def error_is_fatal(event: rt.ErrorEvent, session_ready: bool) -> bool:
    """Whether an ``error`` event ends the call.

    Benign races (cancel with nothing active) never do. Before ``session.updated`` any error
    means the session is not configured as the call needs; afterwards only errors about the
    session itself do (e.g. ``invalid_value`` on ``session.*``: the update was not applied, so
    the audio format may be wrong). Errors about one request (a truncate, a response) are not.
    """
    if event.code in BENIGN_ERROR_CODES:
        return False
    if not session_ready:
        return True
    detail = event.error
    kind = detail.type if detail is not None else None
    param = (detail.param if detail is not None else None) or ""
    return kind in ("authentication_error", "session_error") or param.startswith("session")
