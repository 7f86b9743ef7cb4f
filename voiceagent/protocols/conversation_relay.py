"""Twilio ConversationRelay codec (``<Connect><ConversationRelay>``), see docs/protocols.md, Twilio
§2.2-2.3.

Text in, text out: Twilio does STT and TTS, messages are discriminated on ``type``.
Inbound messages (Twilio → server) are parsed leniently, since Twilio adds keys over time and
writes ``durationUntilInterruptMs`` as an int or a string. Outbound messages (server → Twilio)
are checked by ``parse_outbound`` as strictly as Twilio validates them, so the simulated
Twilio can answer a bad message with an ``error`` like the real one (error 64107).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, cast
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from voiceagent.errors import ProtocolError
from voiceagent.protocols._wire import (
    MAX_WIRE_INDEX,
    MAX_WIRE_MS,
    MAX_WIRE_TIMESTAMP,
    StrictWireModel,
    WireModel,
    describe,
    dumps,
    loads_object,
    tag_map,
    validate,
)

_PROTOCOL = "conversation relay"


class _Model(WireModel):
    model_config = ConfigDict(alias_generator=to_camel)


class _StrictModel(StrictWireModel):
    model_config = ConfigDict(alias_generator=to_camel)


def _none_to_empty(value: object) -> object:
    return "" if value is None else value


def _to_ms(value: object) -> object:
    """Accept 460, "460", 460.0 or "460.4" for a millisecond count (both forms are documented);
    a count outside 0..MAX_WIRE_MS (1e308, negative, NaN) is not plausible and reads as unknown
    (None), so the message itself still counts."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        try:
            value = float(value.strip()[:64])
        except ValueError:
            return value  # let pydantic report it
    if isinstance(value, int | float):
        return round(value) if 0 <= value <= MAX_WIRE_MS else None
    return value


def _to_timestamp(value: object) -> object:
    """A timestamp outside 0..MAX_WIRE_TIMESTAMP reads as unknown (None)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 <= value <= MAX_WIRE_TIMESTAMP else None
    return value


def _none_to_dict(value: object) -> object:
    return {} if value is None else value


def _scalar_to_str(value: object) -> object:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


_Str = Annotated[str, BeforeValidator(_none_to_empty)]
_Ms = Annotated[int | None, BeforeValidator(_to_ms)]

# --- inbound: Twilio -> server -------------------------------------------------------------


class Setup(_Model):
    """First message after the socket opens; unknown values are ``""``."""

    type: Literal["setup"] = "setup"
    session_id: _Str = ""
    account_sid: _Str = ""
    parent_call_sid: _Str = ""
    call_sid: _Str = ""
    from_: _Str = Field("", alias="from")
    to: _Str = ""
    forwarded_from: _Str = ""
    call_type: _Str = ""
    caller_name: _Str = ""
    direction: _Str = ""
    call_status: _Str = ""
    custom_parameters: Annotated[dict[str, str], BeforeValidator(_none_to_dict)] = {}


class Prompt(_Model):
    """Caller speech; with partial prompts, ``voice_prompt`` is cumulative until ``last``."""

    type: Literal["prompt"] = "prompt"
    voice_prompt: str
    lang: _Str = ""
    last: bool = True


class Dtmf(_Model):
    """A key press (only with ``dtmfDetection``)."""

    type: Literal["dtmf"] = "dtmf"
    digit: str


class Interrupt(_Model):
    """The caller cut TTS off after ``utterance_until_interrupt`` was spoken."""

    type: Literal["interrupt"] = "interrupt"
    utterance_until_interrupt: _Str = ""
    duration_until_interrupt_ms: _Ms = None


class Error(_Model):
    """Twilio rejected one of our messages or hit a problem."""

    type: Literal["error"] = "error"
    description: _Str = ""


class Info(_Model):
    """Debug/events subscription data (``roundTripDelayMs``, ``agentSpeaking`` ...)."""

    type: Literal["info"] = "info"
    name: str
    value: Annotated[str, BeforeValidator(_scalar_to_str)] = ""
    ts: Annotated[int | None, BeforeValidator(_to_timestamp)] = None


RelayInbound = Annotated[
    Setup | Prompt | Dtmf | Interrupt | Error | Info, Field(discriminator="type")
]
"""Any message Twilio sends to the server, discriminated on ``type``."""

_INBOUND = tag_map(RelayInbound, "type")


def parse_inbound(raw: str | bytes) -> RelayInbound:
    """Parse one Twilio → server message; raise ProtocolError if it is not a valid one."""
    obj = loads_object(raw, _PROTOCOL)
    kind = obj.get("type")
    model = _INBOUND.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ProtocolError(f"{_PROTOCOL}: unknown or missing type {kind!r}")
    return cast(RelayInbound, validate(model, obj, _PROTOCOL))


# --- outbound: server -> Twilio ------------------------------------------------------------

_DIGITS = re.compile(r"[0-9w#*]+")


class Text(_StrictModel):
    """A TTS token; sent untrimmed (spaces matter), ``last=True`` ends the talk cycle."""

    type: Literal["text"] = "text"
    token: str
    last: bool = False
    lang: str | None = None
    interruptible: bool | None = None
    preemptible: bool | None = None


class Play(_StrictModel):
    """Play an audio URL; ``loop=0`` means the maximum (1000). No completion event follows."""

    type: Literal["play"] = "play"
    source: str
    loop: int = Field(1, ge=0, le=MAX_WIRE_INDEX)
    preemptible: bool | None = None
    interruptible: bool | None = None

    @field_validator("source")
    @classmethod
    def _check_url(cls, source: str) -> str:
        parts = urlsplit(source)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("source must be an absolute http(s) URL")
        return source


class SendDigits(_StrictModel):
    """Play DTMF tones: ``0-9``, ``#``, ``*`` and ``w`` (a 0.5 s pause)."""

    type: Literal["sendDigits"] = "sendDigits"
    digits: str

    @field_validator("digits")
    @classmethod
    def _check_digits(cls, digits: str) -> str:
        if not _DIGITS.fullmatch(digits):
            raise ValueError("digits must be non-empty and only contain 0-9, w, # and *")
        return digits


class Language(_StrictModel):
    """Switch the TTS and/or STT language for what follows."""

    type: Literal["language"] = "language"
    tts_language: str | None = None
    transcription_language: str | None = None

    @model_validator(mode="after")
    def _check_one(self) -> Language:
        if self.tts_language is None and self.transcription_language is None:
            raise ValueError("set ttsLanguage or transcriptionLanguage")
        return self


class End(_StrictModel):
    """End the session and hand control back to the TwiML ``action``."""

    type: Literal["end"] = "end"
    handoff_data: str | None = None


RelayOutbound = Annotated[Text | Play | SendDigits | Language | End, Field(discriminator="type")]
"""Any message the server may send to Twilio, discriminated on ``type``."""

_OUTBOUND: TypeAdapter[Text | Play | SendDigits | Language | End] = TypeAdapter(RelayOutbound)


def parse_outbound(raw: str | bytes) -> RelayOutbound:
    """Check a server → Twilio message as strictly as Twilio does (simulator side).

    Unknown types, extra or missing fields, wrong types (``"loop": "2"``, ``"token": null``)
    raise ProtocolError; its text is fit for the ``error`` message the simulator answers with.
    """
    obj = loads_object(raw, _PROTOCOL)
    try:
        return _OUTBOUND.validate_python(obj, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise ProtocolError(f"{_PROTOCOL}: invalid message: {describe(exc)}") from exc


def dump(model: WireModel) -> str:
    """Serialize any message of this module (None fields left out, tokens kept verbatim)."""
    return dumps(model)
