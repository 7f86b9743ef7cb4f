"""Inworld Realtime server events (server → client), see docs/protocols.md, Inworld §1.5-1.6.

Every documented event is a model: session, input audio buffer, conversation item,
transcription, error and ping events live here, the ``response.*`` family in
``inworld_response_events`` (re-exported). Beta type names (``response.audio.delta``,
``response.audio_transcript.*``, ``response.text.*``) map to the same GA model and keep their
received ``type``. An unknown ``type`` becomes ``UnknownEvent`` (documented: ignore it) and a
frame with no ``type`` becomes ``UntypedFrame``. Import them from ``inworld_realtime``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, cast

from pydantic import Field

from voiceagent.protocols._wire import (
    WireIndex,
    WireMs,
    WireTimestamp,
    loads_object,
    tag_map,
    validate,
)
from voiceagent.protocols.inworld_realtime_shapes import (
    ErrorDetail,
    Item,
    RealtimeEvent,
    ServerSession,
)
from voiceagent.protocols.inworld_response_events import (
    BackchannelAudioDelta,
    BackchannelAudioDone,
    BackchannelSkipped,
    ContentPartAdded,
    ContentPartDone,
    FunctionCallArgumentsDelta,
    FunctionCallArgumentsDone,
    OutputAudioDelta,
    OutputAudioDone,
    OutputAudioTranscriptDelta,
    OutputAudioTranscriptDone,
    OutputTextDelta,
    OutputTextDone,
    ResponseCreated,
    ResponseDone,
    ResponseOutputItemAdded,
    ResponseOutputItemDone,
)

__all__ = [
    "BackchannelAudioDelta",
    "BackchannelAudioDone",
    "BackchannelSkipped",
    "ContentPartAdded",
    "ContentPartDone",
    "ConversationItemAdded",
    "ConversationItemDone",
    "ConversationItemTruncated",
    "ErrorEvent",
    "FunctionCallArgumentsDelta",
    "FunctionCallArgumentsDone",
    "InputAudioBufferCleared",
    "InputAudioBufferCommitted",
    "OutputAudioDelta",
    "OutputAudioDone",
    "OutputAudioTranscriptDelta",
    "OutputAudioTranscriptDone",
    "OutputTextDelta",
    "OutputTextDone",
    "ParsedServerEvent",
    "Ping",
    "ResponseCreated",
    "ResponseDone",
    "ResponseOutputItemAdded",
    "ResponseOutputItemDone",
    "ServerEvent",
    "SessionCreated",
    "SessionUpdated",
    "SpeechStarted",
    "SpeechStopped",
    "TranscriptionCompleted",
    "TranscriptionDelta",
    "UnknownEvent",
    "UntypedFrame",
    "parse_server_event",
    "validate_server_event",
]

_PROTOCOL = "inworld realtime"


class SessionCreated(RealtimeEvent):
    type: Literal["session.created"] = "session.created"
    session: ServerSession | None = None


class SessionUpdated(RealtimeEvent):
    """Exactly one per ``session.update``; clients greet on it."""

    type: Literal["session.updated"] = "session.updated"
    session: ServerSession | None = None


class SpeechStarted(RealtimeEvent):
    """VAD heard the caller: the barge-in trigger."""

    type: Literal["input_audio_buffer.speech_started"] = "input_audio_buffer.speech_started"
    item_id: str | None = None
    audio_start_ms: WireMs | None = None


class SpeechStopped(RealtimeEvent):
    type: Literal["input_audio_buffer.speech_stopped"] = "input_audio_buffer.speech_stopped"
    item_id: str | None = None
    audio_end_ms: WireMs | None = None


class InputAudioBufferCommitted(RealtimeEvent):
    type: Literal["input_audio_buffer.committed"] = "input_audio_buffer.committed"
    item_id: str | None = None
    previous_item_id: str | None = None


class InputAudioBufferCleared(RealtimeEvent):
    type: Literal["input_audio_buffer.cleared"] = "input_audio_buffer.cleared"


class ConversationItemAdded(RealtimeEvent):
    type: Literal["conversation.item.added"] = "conversation.item.added"
    item: Item
    previous_item_id: str | None = None


class ConversationItemDone(RealtimeEvent):
    type: Literal["conversation.item.done"] = "conversation.item.done"
    item: Item
    previous_item_id: str | None = None


class ConversationItemTruncated(RealtimeEvent):
    type: Literal["conversation.item.truncated"] = "conversation.item.truncated"
    item_id: str
    content_index: WireIndex = 0
    audio_end_ms: WireMs


class TranscriptionDelta(RealtimeEvent):
    """Caller STT text so far; may be cumulative (Soniox), reconcile by prefix."""

    type: Literal["conversation.item.input_audio_transcription.delta"] = (
        "conversation.item.input_audio_transcription.delta"
    )
    item_id: str | None = None
    content_index: WireIndex = 0
    delta: str = ""


class TranscriptionCompleted(RealtimeEvent):
    """The authoritative caller transcript of ``item_id``."""

    type: Literal["conversation.item.input_audio_transcription.completed"] = (
        "conversation.item.input_audio_transcription.completed"
    )
    item_id: str | None = None
    content_index: WireIndex = 0
    transcript: str = ""


class ErrorEvent(RealtimeEvent):
    """An error, nested (``error.message``) or flat (top-level ``message``)."""

    type: Literal["error"] = "error"
    error: ErrorDetail | None = None
    top_message: str | None = Field(None, alias="message")

    @property
    def code(self) -> str | None:
        """``error.code`` as a string (``response_cancel_not_active`` ...), if any."""
        code = self.error.code if self.error else None
        return None if code is None else str(code)

    @property
    def message(self) -> str:
        """The human-readable message from whichever form was sent."""
        nested = self.error.message if self.error else None
        return nested or self.top_message or ""


class Ping(RealtimeEvent):
    type: Literal["ping"] = "ping"
    timestamp: WireTimestamp | None = None


ServerEvent: TypeAlias = (
    SessionCreated
    | SessionUpdated
    | SpeechStarted
    | SpeechStopped
    | InputAudioBufferCommitted
    | InputAudioBufferCleared
    | ConversationItemAdded
    | ConversationItemDone
    | ConversationItemTruncated
    | TranscriptionDelta
    | TranscriptionCompleted
    | ResponseCreated
    | ResponseOutputItemAdded
    | ResponseOutputItemDone
    | ContentPartAdded
    | ContentPartDone
    | OutputAudioDelta
    | OutputAudioDone
    | OutputAudioTranscriptDelta
    | OutputAudioTranscriptDone
    | OutputTextDelta
    | OutputTextDone
    | FunctionCallArgumentsDelta
    | FunctionCallArgumentsDone
    | ResponseDone
    | ErrorEvent
    | Ping
    | BackchannelAudioDelta
    | BackchannelAudioDone
    | BackchannelSkipped
)
"""Any documented server event (GA and beta type names map to the same model)."""

_SERVER = tag_map(ServerEvent, "type")


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """A server event whose ``type`` we do not model; documented practice is to ignore it."""

    type: str
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UntypedFrame:
    """A frame with no ``type``, e.g. ``{"errorType":"SESSION_RESOURCES_EXHAUSTED"}``."""

    error_type: str | None
    raw: dict[str, Any] = field(default_factory=dict)


ParsedServerEvent: TypeAlias = ServerEvent | UnknownEvent | UntypedFrame


def parse_server_event(raw: str | bytes) -> ParsedServerEvent:
    """Parse a server frame (client side). Bad JSON or bad fields of a known type raise
    ProtocolError; unknown types and untyped frames are returned, not raised."""
    return validate_server_event(loads_object(raw, _PROTOCOL))


def validate_server_event(obj: dict[str, Any]) -> ParsedServerEvent:
    """A decoded server frame as its event (see ``parse_server_event``)."""
    kind = obj.get("type")
    if not isinstance(kind, str):
        error_type = obj.get("errorType")
        return UntypedFrame(error_type if isinstance(error_type, str) else None, obj)
    model = _SERVER.get(kind)
    if model is None:
        return UnknownEvent(kind, obj)
    return cast(ServerEvent, validate(model, obj, _PROTOCOL))
