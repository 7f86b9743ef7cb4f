"""Inworld Realtime codec (OpenAI Realtime GA shapes, extended), see docs/protocols.md, Inworld §1.

The one module to import: it holds the client events and re-exports the session shapes
(``inworld_realtime_shapes``) and the server events (``inworld_server_events``), so
``from voiceagent.protocols import inworld_realtime as rt`` gives ``rt.SessionConfig``,
``rt.parse_server_event``, ``rt.OutputAudioDelta`` ... Both directions are lenient: unknown
fields are ignored, because the fake server must accept what real clients send and our client
must survive what the real server adds. Generating ``event_id`` values is the caller's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeAlias, cast

import orjson
from pydantic import Field

from voiceagent.errors import ProtocolError
from voiceagent.protocols._wire import (
    WireModel,
    b64decode,
    b64encode,
    dumps,
    loads_object,
    tag_map,
    validate,
)
from voiceagent.protocols.inworld_realtime_shapes import *  # noqa: F403  (re-exported API)
from voiceagent.protocols.inworld_realtime_shapes import Item, RealtimeEvent, SessionConfig
from voiceagent.protocols.inworld_server_events import *  # noqa: F403  (re-exported API)
from voiceagent.protocols.inworld_server_events import (
    ParsedServerEvent,
    UnknownEvent,
    UntypedFrame,
    validate_server_event,
)

_PROTOCOL = "inworld realtime"


class SessionUpdate(RealtimeEvent):
    type: Literal["session.update"] = "session.update"
    session: SessionConfig


class InputAudioBufferAppend(RealtimeEvent):
    type: Literal["input_audio_buffer.append"] = "input_audio_buffer.append"
    audio: str

    def audio_bytes(self) -> bytes:
        """The decoded audio; ProtocolError if it is not valid base64."""
        return b64decode(self.audio, "input_audio_buffer.append.audio")


class InputAudioBufferCommit(RealtimeEvent):
    type: Literal["input_audio_buffer.commit"] = "input_audio_buffer.commit"


class InputAudioBufferClear(RealtimeEvent):
    type: Literal["input_audio_buffer.clear"] = "input_audio_buffer.clear"


class ConversationItemCreate(RealtimeEvent):
    type: Literal["conversation.item.create"] = "conversation.item.create"
    item: Item
    previous_item_id: str | None = None


class ConversationItemTruncate(RealtimeEvent):
    """Accepted by Inworld, effect unverified: never wait for ``conversation.item.truncated``."""

    type: Literal["conversation.item.truncate"] = "conversation.item.truncate"
    item_id: str
    content_index: int = 0
    audio_end_ms: int


class ConversationItemDelete(RealtimeEvent):
    type: Literal["conversation.item.delete"] = "conversation.item.delete"
    item_id: str


class ConversationItemRetrieve(RealtimeEvent):
    type: Literal["conversation.item.retrieve"] = "conversation.item.retrieve"
    item_id: str


class ResponseCreate(RealtimeEvent):
    type: Literal["response.create"] = "response.create"
    response: dict[str, Any] | None = None


class ResponseCancel(RealtimeEvent):
    """Barge-in; an ``error`` ``response_cancel_not_active`` reply is harmless."""

    type: Literal["response.cancel"] = "response.cancel"
    response_id: str | None = None


ClientEvent = Annotated[
    SessionUpdate
    | InputAudioBufferAppend
    | InputAudioBufferCommit
    | InputAudioBufferClear
    | ConversationItemCreate
    | ConversationItemTruncate
    | ConversationItemDelete
    | ConversationItemRetrieve
    | ResponseCreate
    | ResponseCancel,
    Field(discriminator="type"),
]
"""Any event a client sends, discriminated on ``type``."""


_CLIENT = tag_map(ClientEvent, "type")


def parse_client_event(raw: str | bytes) -> ClientEvent:
    """Parse a client event (fake server side); unknown types and bad fields raise ProtocolError."""
    obj = loads_object(raw, _PROTOCOL)
    kind = obj.get("type")
    model = _CLIENT.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ProtocolError(f"{_PROTOCOL}: unknown or missing client event type {kind!r}")
    return cast(ClientEvent, validate(model, obj, _PROTOCOL))


def dump_append(audio: bytes | bytearray) -> str:
    """The ``input_audio_buffer.append`` frame for raw ``audio`` (hot path)."""
    return '{"type":"input_audio_buffer.append","audio":"' + b64encode(audio) + '"}'


def dump(event: WireModel | UnknownEvent | UntypedFrame) -> str:
    """Serialize a client or server event (None fields left out, explicit nulls kept)."""
    if isinstance(event, UnknownEvent | UntypedFrame):
        return orjson.dumps(event.raw).decode()
    return dumps(event)


# --- the client's reader: one parse per frame -----------------------------------------------

AUDIO_DELTA_TYPES = frozenset({"response.output_audio.delta", "response.audio.delta"})
TRANSCRIPT_DELTA_TYPES = frozenset(
    {"response.output_audio_transcript.delta", "response.audio_transcript.delta"}
)


@dataclass(frozen=True, slots=True)
class AudioDelta:
    """Agent audio read on the hot path: the base64 as Inworld sent it (forwarded verbatim)."""

    response_id: str
    item_id: str | None
    payload: str
    n_bytes: int


@dataclass(frozen=True, slots=True)
class TranscriptDelta:
    """A piece of the text the agent's audio speaks."""

    response_id: str
    delta: str


ReadEvent: TypeAlias = AudioDelta | TranscriptDelta | ParsedServerEvent


def read_server_event(raw: str | bytes) -> ReadEvent:
    """The client's reader: one JSON parse per frame; audio and transcript deltas skip pydantic,
    every other event is validated (as ``parse_server_event`` does). ProtocolError if invalid."""
    obj = loads_object(raw, _PROTOCOL)
    kind = obj.get("type")
    if kind in AUDIO_DELTA_TYPES:
        payload = obj.get("delta")
        if not isinstance(payload, str):
            raise ProtocolError(f"{_PROTOCOL}: {kind} without a base64 delta")
        item_id = obj.get("item_id")
        return AudioDelta(
            str(obj.get("response_id") or ""),
            item_id if isinstance(item_id, str) else None,
            payload,
            len(b64decode(payload, str(kind))),
        )
    if kind in TRANSCRIPT_DELTA_TYPES:
        delta = obj.get("delta")
        return TranscriptDelta(
            str(obj.get("response_id") or ""), delta if isinstance(delta, str) else ""
        )
    return validate_server_event(obj)
