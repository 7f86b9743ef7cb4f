"""Inworld Router chat completions with LLM + TTS over SSE, see inworld.md API 2.

Client side: ``ChatRequest`` / ``dump_request``, the incremental ``SseDecoder`` and
``parse_event`` turning each ``data:`` payload into a ``RouterChunk`` (transcript text that
announces a sentence, then its raw PCM16 48 kHz audio), ``RouterDone`` or
``RouterStreamError``; ``parse_error_body`` for HTTP error bodies in either documented style.
Fake side: ``parse_request`` and the chunk encoders (``sse``, ``transcript_chunk`` ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import orjson
from pydantic import ConfigDict, model_validator

from voiceagent.errors import ProtocolError
from voiceagent.protocols._wire import (
    WireModel,
    b64decode,
    b64encode,
    loads_object,
    validate,
)

_PROTOCOL = "inworld router"
_ERROR_TEXT_LIMIT = 500


class _Model(WireModel):
    """Router bodies keep unknown keys: router extras may sit at the top level."""

    model_config = ConfigDict(extra="allow")


class ChatMessage(_Model):
    """An OpenAI-format message (``system`` / ``user`` / ``assistant`` / ``tool``); an
    assistant message that made ``tool_calls`` may have no ``content``."""

    role: str
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    _nullable: ClassVar[frozenset[str]] = frozenset({"content"})

    @model_validator(mode="after")
    def _content_unless_calls(self) -> ChatMessage:
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError("content is required (unless an assistant message makes tool_calls)")
        return self


class AudioRequest(_Model):
    """Ask the router to speak the answer; ``voice`` is required when ``audio`` is present."""

    voice: str
    model: str | None = None


class ChatRequest(_Model):
    """A chat completions request body; unknown top-level keys are kept (router extras)."""

    model: str
    messages: list[ChatMessage]
    stream: bool = True
    max_tokens: int | None = None
    temperature: float | None = None
    audio: AudioRequest | None = None
    user: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    extra_body: dict[str, Any] | None = None

    def router_options(self) -> dict[str, Any]:
        """Router extras from the top level and from a nested ``extra_body`` (nested wins)."""
        return {**(self.model_extra or {}), **(self.extra_body or {})}


def dump_request(req: ChatRequest) -> bytes:
    """The JSON body to POST (None fields left out)."""
    return req.model_dump_json(exclude_none=True).encode()


def parse_request(raw: str | bytes) -> ChatRequest:
    """Parse a request body (fake side); ProtocolError when it is not a valid request."""
    return validate(ChatRequest, loads_object(raw, _PROTOCOL), _PROTOCOL)


# --- streaming response --------------------------------------------------------------------


class SseDecoder:
    """Incremental SSE line decoder: feed raw bytes, get back complete ``data`` payloads.

    Lines may be split across feeds and end in ``\\n`` or ``\\r\\n``. Comments (``:``), blank
    lines and other fields (``event:``, ``id:``) are skipped. Each ``data:`` line is one
    payload (one space after the colon is dropped, as SSE specifies), which is how the router
    and its reference client frame events.
    """

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[str]:
        """Consume ``data``; return the payloads of the lines it completed."""
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        return [p for p in map(_data_payload, lines) if p is not None]

    def flush(self) -> list[str]:
        """At end of stream: the payload of a last line that had no newline, if any."""
        line, self._buffer = self._buffer, b""
        payload = _data_payload(line)
        return [] if payload is None else [payload]


def _data_payload(line: bytes) -> str | None:
    if not line.startswith(b"data:"):
        return None
    value = line[5:].removesuffix(b"\r")
    if value.startswith(b" "):
        value = value[1:]
    return value.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """``delta.tool_calls[i]``: the first piece of a call has ``id`` and ``name``; any piece
    may add to ``arguments`` (join them with ``tools.router_calls.ToolCallAccumulator``)."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class RouterChunk:
    """One streamed chunk, decoded: a transcript announces a segment, its audio follows."""

    transcript: str | None = None
    audio: bytes = b""
    content: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    model: str | None = None
    id: str | None = None
    tool_calls: tuple[ToolCallDelta, ...] = ()


@dataclass(frozen=True, slots=True)
class RouterDone:
    """``data: [DONE]``: the stream is complete."""


@dataclass(frozen=True, slots=True)
class RouterStreamError:
    """An ``error`` object sent in the middle of the stream."""

    message: str


RouterEvent = RouterChunk | RouterDone | RouterStreamError


def parse_event(payload: str) -> RouterEvent:
    """Decode one ``data`` payload; ProtocolError for JSON that is not a chunk."""
    if payload.strip() == "[DONE]":
        return RouterDone()
    obj = loads_object(payload, _PROTOCOL)
    if "error" in obj:
        return RouterStreamError(_error_message(obj) or payload[:_ERROR_TEXT_LIMIT])
    choices = _opt(obj.get("choices"), list, "choices") or [None]
    choice = _dict(choices[0], "choices[0]")
    delta = _dict(choice.get("delta"), "delta")
    audio = _dict(delta.get("audio"), "delta.audio")
    data = _opt(audio.get("data"), str, "delta.audio.data")
    usage = obj.get("usage")
    return RouterChunk(
        transcript=_opt(audio.get("transcript"), str, "delta.audio.transcript"),
        audio=b64decode(data, "delta.audio.data") if data else b"",
        content=_opt(delta.get("content"), str, "delta.content"),
        finish_reason=_opt(choice.get("finish_reason"), str, "finish_reason"),
        usage=_opt(usage, dict, "usage"),
        model=_opt(obj.get("model"), str, "model"),
        id=_opt(obj.get("id"), str, "id"),
        tool_calls=parse_tool_call_deltas(delta.get("tool_calls")),
    )


def parse_tool_call_deltas(value: Any) -> tuple[ToolCallDelta, ...]:
    """A chunk's ``delta.tool_calls`` (None: no pieces); ProtocolError if malformed."""
    pieces = _opt(value, list, "delta.tool_calls") or []
    return tuple(_tool_call_delta(_dict(p, "delta.tool_calls[]"), i) for i, p in enumerate(pieces))


def _tool_call_delta(piece: dict[str, Any], position: int) -> ToolCallDelta:
    function = _dict(piece.get("function"), "delta.tool_calls[].function")
    return ToolCallDelta(
        index=_opt(piece.get("index", position), int, "delta.tool_calls[].index"),
        id=_opt(piece.get("id"), str, "delta.tool_calls[].id") or None,
        name=_opt(function.get("name"), str, "delta.tool_calls[].function.name") or None,
        arguments=_opt(function.get("arguments"), str, "...function.arguments") or "",
    )


def _dict(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError(f"{_PROTOCOL}: {where} must be an object")
    return value


def _opt(value: Any, kind: type[Any], where: str) -> Any:
    if value is not None and not isinstance(value, kind):
        raise ProtocolError(f"{_PROTOCOL}: {where} must be {kind.__name__}")
    return value


def parse_error_body(body: str) -> str:
    """The human message of an HTTP error body: OpenAI style ``{"error":{"message"}}`` or
    ``{"error":"text"}``, gRPC style ``{"code","message","details"}``, else the raw text
    (truncated to 500 chars)."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        obj = None
    message = _error_message(obj) if isinstance(obj, dict) else None
    return message or body[:_ERROR_TEXT_LIMIT]


def _error_message(obj: dict[str, Any]) -> str | None:
    error = obj.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    if isinstance(error, str) and error:
        return error[:_ERROR_TEXT_LIMIT]
    message = obj.get("message")
    return message[:_ERROR_TEXT_LIMIT] if isinstance(message, str) and message else None


# --- fake-side encoders --------------------------------------------------------------------

SSE_DONE = b"data: [DONE]\n\n"


def sse(payload: dict[str, Any] | str) -> bytes:
    """One SSE event: ``data: <payload>\\n\\n`` (dicts are JSON-encoded)."""
    body = payload.encode() if isinstance(payload, str) else orjson.dumps(payload)
    return b"data: " + body + b"\n\n"


def _chunk(completion_id: str, model: str, delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": extra.pop("finish_reason", None)}
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [choice],
        **extra,
    }


def transcript_chunk(completion_id: str, model: str, text: str, first: bool) -> dict[str, Any]:
    """A chunk announcing a text segment; the first one also carries ``role: assistant``."""
    delta: dict[str, Any] = {"role": "assistant"} if first else {}
    delta["audio"] = {"transcript": text}
    return _chunk(completion_id, model, delta)


def audio_chunk(completion_id: str, model: str, pcm: bytes) -> dict[str, Any]:
    """A chunk of raw PCM16 48 kHz mono audio for the current segment."""
    return _chunk(completion_id, model, {"audio": {"data": b64encode(pcm)}})


def text_chunk(completion_id: str, model: str, text: str) -> dict[str, Any]:
    """A plain ``delta.content`` text chunk (optional mirror of the transcript)."""
    return _chunk(completion_id, model, {"content": text})


def tool_call_chunks(
    completion_id: str, model: str, calls: Sequence[tuple[str, str, str]], piece_chars: int = 8
) -> list[dict[str, Any]]:
    """Chunks streaming ``calls`` (id, name, arguments): a head piece per call (id, name),
    then its arguments in ``piece_chars`` pieces. End with ``finish_chunk(..., "tool_calls")``."""
    chunks = []
    for index, (call_id, name, arguments) in enumerate(calls):
        function = {"name": name, "arguments": ""}
        head: dict[str, Any] = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": function,
        }
        delta: dict[str, Any] = {"tool_calls": [head]}
        if index == 0:
            delta = {"role": "assistant", "content": None, **delta}
        chunks.append(_chunk(completion_id, model, delta))
        for start in range(0, len(arguments), max(1, piece_chars)):
            piece = {
                "index": index,
                "function": {"arguments": arguments[start : start + piece_chars]},
            }
            chunks.append(_chunk(completion_id, model, {"tool_calls": [piece]}))
    return chunks


def finish_chunk(
    completion_id: str, model: str, usage: dict[str, Any] | None = None,
    finish_reason: str = "stop",
) -> dict[str, Any]:  # fmt: skip
    """The last chunk: empty delta, ``finish_reason`` (``stop``, ``tool_calls``) and usage."""
    extra: dict[str, Any] = {"finish_reason": finish_reason}
    if usage is not None:
        extra["usage"] = usage
    return _chunk(completion_id, model, {}, **extra)


# HTTP status -> canonical gRPC code (INVALID_ARGUMENT, UNAUTHENTICATED, PERMISSION_DENIED ...)
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13, 501: 12, 503: 14, 504: 4}
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def error_body(style: Literal["openai", "grpc"], status: int, message: str) -> dict[str, Any]:
    """An HTTP error body in the OpenAI (``{"error":{…}}``) or gRPC (``{"code",…}``) style."""
    if style == "grpc":
        return {"code": _GRPC_CODES.get(status, 2), "message": message, "details": []}
    kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "code": None}}
