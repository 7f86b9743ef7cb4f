"""Inworld Realtime response events (server → client), see docs/protocols.md, Inworld §1.5-1.6.

The ``response.*`` family: a response's lifecycle (created, output items, done), its content
parts, audio / transcript / text deltas, function call arguments and backchannel audio. Beta
type names (``response.audio.delta``, ``response.audio_transcript.*``, ``response.text.*``)
map to the same GA model and keep their received ``type``. Import them from
``inworld_realtime``.
"""

from __future__ import annotations

from typing import Any, Literal

from voiceagent.protocols._wire import WireIndex, b64decode
from voiceagent.protocols.inworld_realtime_shapes import (
    ContentPart,
    Item,
    RealtimeEvent,
    ResponseInfo,
)


class ResponseCreated(RealtimeEvent):
    type: Literal["response.created"] = "response.created"
    response: ResponseInfo


class ResponseOutputItemAdded(RealtimeEvent):
    type: Literal["response.output_item.added"] = "response.output_item.added"
    response_id: str | None = None
    output_index: WireIndex = 0
    item: Item


class ResponseOutputItemDone(RealtimeEvent):
    type: Literal["response.output_item.done"] = "response.output_item.done"
    response_id: str | None = None
    output_index: WireIndex = 0
    item: Item


class _PartEvent(RealtimeEvent):
    response_id: str | None = None
    item_id: str | None = None
    output_index: WireIndex = 0
    content_index: WireIndex = 0


class ContentPartAdded(_PartEvent):
    type: Literal["response.content_part.added"] = "response.content_part.added"
    part: ContentPart | None = None


class ContentPartDone(_PartEvent):
    type: Literal["response.content_part.done"] = "response.content_part.done"
    part: ContentPart | None = None


class OutputAudioDelta(_PartEvent):
    """Agent audio in the session's output format (also sent as beta ``response.audio.delta``)."""

    type: Literal["response.output_audio.delta", "response.audio.delta"] = (
        "response.output_audio.delta"
    )
    delta: str

    def audio(self) -> bytes:
        """The decoded audio bytes; ProtocolError if ``delta`` is not valid base64."""
        return b64decode(self.delta, "response.output_audio.delta")


class OutputAudioDone(_PartEvent):
    type: Literal["response.output_audio.done", "response.audio.done"] = (
        "response.output_audio.done"
    )


class OutputAudioTranscriptDelta(_PartEvent):
    type: Literal["response.output_audio_transcript.delta", "response.audio_transcript.delta"] = (
        "response.output_audio_transcript.delta"
    )
    delta: str = ""


class OutputAudioTranscriptDone(_PartEvent):
    type: Literal["response.output_audio_transcript.done", "response.audio_transcript.done"] = (
        "response.output_audio_transcript.done"
    )
    transcript: str = ""


class OutputTextDelta(_PartEvent):
    type: Literal["response.output_text.delta", "response.text.delta"] = (
        "response.output_text.delta"
    )
    delta: str = ""


class OutputTextDone(_PartEvent):
    type: Literal["response.output_text.done", "response.text.done"] = "response.output_text.done"
    text: str = ""


class FunctionCallArgumentsDelta(RealtimeEvent):
    type: Literal["response.function_call_arguments.delta"] = (
        "response.function_call_arguments.delta"
    )
    response_id: str | None = None
    item_id: str | None = None
    call_id: str | None = None
    delta: str = ""


class FunctionCallArgumentsDone(RealtimeEvent):
    """``name`` may be missing on Inworld: resolve it from the tracked item by ``call_id``."""

    type: Literal["response.function_call_arguments.done"] = "response.function_call_arguments.done"
    response_id: str | None = None
    item_id: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str = ""


class ResponseDone(RealtimeEvent):
    type: Literal["response.done"] = "response.done"
    response: ResponseInfo
    usage: dict[str, Any] | None = None


class BackchannelAudioDelta(RealtimeEvent):
    type: Literal["response.backchannel.audio.delta"] = "response.backchannel.audio.delta"
    backchannel_id: str | None = None
    delta: str = ""


class BackchannelAudioDone(RealtimeEvent):
    type: Literal["response.backchannel.audio.done"] = "response.backchannel.audio.done"
    backchannel_id: str | None = None
    phrase: str | None = None


class BackchannelSkipped(RealtimeEvent):
    type: Literal["response.backchannel.skipped"] = "response.backchannel.skipped"
    backchannel_id: str | None = None
    reason: str | None = None
