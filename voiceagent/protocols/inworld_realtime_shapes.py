"""Inworld Realtime session shapes shared by both directions, see docs/protocols.md, Inworld
§1.3-1.5.

The ``session`` body of ``session.update`` / ``session.created``, audio formats in both
documented forms, conversation items and content parts, response and error details, and the
``RealtimeEvent`` base of every event. Lenient: unknown fields are ignored, because the fake
server must accept what real clients send. Import them from ``inworld_realtime``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeAlias

from pydantic import AliasChoices, Field

from voiceagent.protocols._wire import WireModel


class RealtimeEvent(WireModel):
    """Base of every client and server event: any event may carry an ``event_id``."""

    event_id: str | None = None


class AudioFormatSpec(WireModel):
    """GA object form: ``{"type":"audio/pcmu"}``, ``{"type":"audio/pcm","rate":24000}``."""

    type: str
    rate: int | None = None


AudioFormat: TypeAlias = str | AudioFormatSpec
"""Either the legacy string (``"g711_ulaw"``) or the GA object form."""


def is_ulaw_format(fmt: AudioFormat | Mapping[str, Any] | None) -> bool:
    """True for G.711 µ-law 8 kHz in either form (``"g711_ulaw"`` or ``{"type":"audio/pcmu"}``)."""
    if isinstance(fmt, str):
        return fmt == "g711_ulaw"
    kind = fmt.type if isinstance(fmt, AudioFormatSpec) else (fmt or {}).get("type")
    return kind == "audio/pcmu"


class TranscriptionConfig(WireModel):
    """Input STT; an invalid ``model`` is the one documented strict case (``invalid_value``)."""

    model: str | None = None
    language: str | None = None
    prompt: str | None = None


class NoiseReduction(WireModel):
    """``near_field`` or ``far_field``."""

    type: str


class TurnDetection(WireModel):
    """Server VAD; ``turn_detection: null`` means manual commit + ``response.create``."""

    type: str = "semantic_vad"
    eagerness: str | None = None
    create_response: bool | None = None
    interrupt_response: bool | None = None


class AudioInput(WireModel):
    """``session.audio.input``; explicit ``null`` turn detection / noise reduction survive dump."""

    _nullable = frozenset({"turn_detection", "noise_reduction"})
    format: AudioFormat | None = None
    transcription: TranscriptionConfig | None = None
    noise_reduction: NoiseReduction | None = None
    turn_detection: TurnDetection | None = None


class AudioOutput(WireModel):
    """``session.audio.output``; ``model`` (the TTS model) is an Inworld extension."""

    format: AudioFormat | None = None
    model: str | None = None
    voice: str | None = None
    speed: float | None = None


class AudioConfig(WireModel):
    """``session.audio``."""

    input: AudioInput | None = None
    output: AudioOutput | None = None


class SessionConfig(WireModel):
    """The ``session`` body of ``session.update`` (may be partial: unset fields stay None)."""

    type: str = "realtime"
    model: str | None = Field(None, validation_alias=AliasChoices("model", "modelId"))
    instructions: str | None = None
    output_modalities: list[str] | None = None
    temperature: float | None = None
    max_output_tokens: int | Literal["inf"] | None = None
    audio: AudioConfig | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    provider_data: dict[str, Any] | None = Field(None, alias="providerData")


class ServerSession(SessionConfig):
    """The session as the server reports it in ``session.created`` / ``session.updated``."""

    id: str | None = None
    expires_at: int | None = None


class ContentPart(WireModel):
    """One content part: ``input_text``, ``input_audio``, ``text``, ``audio`` ..."""

    type: str
    text: str | None = None
    audio: str | None = None
    transcript: str | None = None


class Item(WireModel):
    """A conversation item: a message, a function call or a function call output."""

    id: str | None = None
    type: str = "message"
    status: str | None = None
    role: str | None = None
    content: list[ContentPart] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None

    @classmethod
    def user_text(cls, text: str) -> Item:
        """A user message with one ``input_text`` part (e.g. the greeting trigger)."""
        return cls(role="user", content=[ContentPart(type="input_text", text=text)])

    @classmethod
    def function_call_output(cls, call_id: str, output: str) -> Item:
        """A tool result; send ``response.create`` after it."""
        return cls(type="function_call_output", call_id=call_id, output=output)


class ResponseInfo(WireModel):
    """``status``: in_progress, completed, incomplete, cancelled or failed."""

    id: str | None = None
    status: str | None = None
    status_details: dict[str, Any] | None = None
    output: list[Item] | None = None
    usage: dict[str, Any] | None = None


class ErrorDetail(WireModel):
    """The nested ``error`` object of an ``error`` event."""

    type: str | None = None
    code: str | int | None = None
    message: str | None = None
    param: str | None = None
    event_id: str | None = None
