"""Twilio Media Streams codec (bidirectional ``<Connect><Stream>``), see docs/protocols.md, Twilio
§1.

Inbound frames (Twilio → server) are parsed leniently: Twilio may add fields, and numbers it
sends as strings (``sequenceNumber``, ``chunk``, ``timestamp``) become ``int``. When dumped
(the simulator plays Twilio) they go back to strings, so ``dump(Start(...))`` is the exact
documented wire shape.

Outbound frames (server → Twilio) are ``media``, ``mark`` and ``clear`` only. The hot path
builds them with ``dump_media`` / ``dump_mark`` / ``dump_clear``; ``parse_outbound`` checks
them as strictly as Twilio does (anything else earns a 31951 warning in the simulator).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

import orjson
from pydantic import ConfigDict, Field, PlainSerializer, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel

from voiceagent.errors import ProtocolError
from voiceagent.protocols._wire import (
    StrictWireModel,
    WireModel,
    b64decode,
    b64encode,
    describe,
    dumps,
    loads_object,
    tag_map,
    validate,
)

_PROTOCOL = "twilio media"

StrInt = Annotated[int, PlainSerializer(str, return_type=str)]
"""An int that Twilio writes as a JSON string (``"42"``)."""


class _Model(WireModel):
    model_config = ConfigDict(alias_generator=to_camel)


class _StrictModel(StrictWireModel):
    model_config = ConfigDict(alias_generator=to_camel)


# --- inbound: Twilio -> server -------------------------------------------------------------


class Connected(_Model):
    """First frame of every stream; carries no streamSid and no sequenceNumber."""

    event: Literal["connected"] = "connected"
    protocol: str = "Call"
    version: str = "1.0.0"


class MediaFormat(_Model):
    """Always µ-law / 8000 Hz / mono on Twilio; sampleRate and channels are JSON numbers."""

    encoding: str = "audio/x-mulaw"
    sample_rate: int = Field(8000, ge=1, le=192_000)
    channels: int = Field(1, ge=1, le=8)


class StartInfo(_Model):
    """The ``start`` block: who is calling and the ``<Parameter>`` values of the TwiML."""

    account_sid: str
    stream_sid: str
    call_sid: str
    tracks: list[str] = ["inbound"]
    custom_parameters: dict[str, str] = {}
    media_format: MediaFormat = MediaFormat()


class Start(_Model):
    """Sent once, right after ``connected``; its sequenceNumber is 1."""

    event: Literal["start"] = "start"
    sequence_number: StrInt | None = None
    start: StartInfo
    stream_sid: str


class MediaInfo(_Model):
    """One chunk of caller audio; ``timestamp`` is ms since stream start (it can jump)."""

    track: str
    chunk: StrInt
    timestamp: StrInt
    payload: str


class Media(_Model):
    """Caller audio, ~50 frames/s of 160 bytes µ-law."""

    event: Literal["media"] = "media"
    sequence_number: StrInt | None = None
    media: MediaInfo
    stream_sid: str

    def audio(self) -> bytes:
        """The raw µ-law bytes of the payload; ProtocolError if it is not valid base64."""
        return b64decode(self.media.payload, "media.payload")


class DtmfInfo(_Model):
    """A key press; ``track`` is ``inbound_track`` (note the suffix)."""

    track: str
    digit: str


class Dtmf(_Model):
    """The caller pressed a key (bidirectional streams only)."""

    event: Literal["dtmf"] = "dtmf"
    stream_sid: str
    sequence_number: StrInt | None = None
    dtmf: DtmfInfo


class MarkInfo(_Model):
    """The name of a mark."""

    name: str


class Mark(_Model):
    """Echo of a mark we sent: the audio before it played, or was flushed by ``clear``."""

    event: Literal["mark"] = "mark"
    sequence_number: StrInt | None = None
    stream_sid: str
    mark: MarkInfo


class StopInfo(_Model):
    """Who stopped."""

    account_sid: str
    call_sid: str


class Stop(_Model):
    """The stream stopped or the call ended; Twilio closes the socket next."""

    event: Literal["stop"] = "stop"
    sequence_number: StrInt | None = None
    stream_sid: str
    stop: StopInfo


TwilioInbound = Annotated[
    Connected | Start | Media | Dtmf | Mark | Stop, Field(discriminator="event")
]
"""Any frame Twilio sends to the server, discriminated on ``event``."""

_INBOUND = tag_map(TwilioInbound, "event")


def parse_inbound(raw: str | bytes) -> TwilioInbound:
    """Parse one Twilio → server text frame; raise ProtocolError if it is not a valid frame."""
    return _validate_inbound(loads_object(raw, _PROTOCOL))


def read_inbound(raw: str | bytes) -> bytes | TwilioInbound:
    """The server's reader: one JSON parse per frame. A ``media`` frame (50 per second per
    call) is returned as its µ-law ``bytes``, nothing else: no model, no wrapper; every other
    event is validated into its model. ProtocolError when invalid."""
    obj = loads_object(raw, _PROTOCOL)
    if obj.get("event") == "media":
        return _media_audio(obj)
    return _validate_inbound(obj)


def _media_audio(obj: dict[str, Any]) -> bytes:
    media = obj.get("media")
    payload = media.get("payload") if isinstance(media, dict) else None
    if not isinstance(payload, str):
        raise ProtocolError(f"{_PROTOCOL}: media frame without a base64 payload")
    return b64decode(payload, "media.payload")


def _validate_inbound(obj: dict[str, Any]) -> TwilioInbound:
    event = obj.get("event")
    model = _INBOUND.get(event) if isinstance(event, str) else None
    if model is None:
        raise ProtocolError(f"{_PROTOCOL}: unknown or missing event {event!r}")
    return cast(TwilioInbound, validate(model, obj, _PROTOCOL))


# --- outbound: server -> Twilio ------------------------------------------------------------


class OutMediaInfo(_StrictModel):
    """Raw µ-law 8 kHz, base64, no file header."""

    payload: str


class OutMedia(_StrictModel):
    """Audio to play to the caller; Twilio buffers it and plays in order."""

    event: Literal["media"] = "media"
    stream_sid: str
    media: OutMediaInfo


class OutMarkInfo(_StrictModel):
    """The name Twilio will echo back."""

    name: str


class OutMark(_StrictModel):
    """Ask Twilio to echo ``name`` once the audio queued before it has played."""

    event: Literal["mark"] = "mark"
    stream_sid: str
    mark: OutMarkInfo


class OutClear(_StrictModel):
    """Drop all buffered outbound audio; pending marks are echoed at once."""

    event: Literal["clear"] = "clear"
    stream_sid: str


TwilioOutbound = Annotated[OutMedia | OutMark | OutClear, Field(discriminator="event")]
"""Any frame the server may send to Twilio, discriminated on ``event``."""

_OUTBOUND: TypeAdapter[OutMedia | OutMark | OutClear] = TypeAdapter(TwilioOutbound)


def parse_outbound(raw: str | bytes) -> TwilioOutbound:
    """Check a server → Twilio frame as strictly as Twilio does (simulator side).

    Unknown events, missing or extra fields, or wrong types raise ProtocolError.
    Matching ``streamSid`` against the active stream is the simulator's job.
    """
    obj = loads_object(raw, _PROTOCOL)
    try:
        return _OUTBOUND.validate_python(obj, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise ProtocolError(f"{_PROTOCOL}: invalid outbound frame: {describe(exc)}") from exc


def dump_media(stream_sid: str, audio: bytes) -> str:
    """The ``media`` frame carrying raw µ-law ``audio`` (hot path)."""
    frame: dict[str, Any] = {
        "event": "media",
        "streamSid": stream_sid,
        "media": {"payload": b64encode(audio)},
    }
    return orjson.dumps(frame).decode()


def dump_media_b64(stream_sid: str, payload_b64: str) -> str:
    """The ``media`` frame for audio already in base64 (Inworld's delta, forwarded verbatim).

    Built by concatenation (hot path): both values are JSON-safe, ``stream_sid`` was checked
    by ``is_safe_sid`` at ``start`` and ``payload_b64`` was validated as base64."""
    return (
        '{"event":"media","streamSid":"'
        + stream_sid
        + '","media":{"payload":"'
        + payload_b64
        + '"}}'
    )


def is_safe_sid(value: str) -> bool:
    """A Twilio SID we may echo in frames and logs: short and alphanumeric."""
    return 0 < len(value) <= 64 and value.isascii() and value.isalnum()


def dump_mark(stream_sid: str, name: str) -> str:
    """The ``mark`` frame named ``name``."""
    frame = {"event": "mark", "streamSid": stream_sid, "mark": {"name": name}}
    return orjson.dumps(frame).decode()


def dump_clear(stream_sid: str) -> str:
    """The ``clear`` frame."""
    return orjson.dumps({"event": "clear", "streamSid": stream_sid}).decode()


def dump(model: WireModel) -> str:
    """Serialize any frame of this module to its wire JSON (aliases, None fields left out)."""
    return dumps(model)
