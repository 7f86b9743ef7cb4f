"""Inworld Router streamed response, client side, see docs/protocols.md, Inworld §2.

The incremental ``SseDecoder`` and ``parse_event`` turning each ``data:`` payload into a
``RouterChunk`` (transcript text that announces a sentence, then its raw PCM16 48 kHz audio,
or ``delta.tool_calls`` pieces as ``ToolCallDelta``), ``RouterDone`` or ``RouterStreamError``;
``parse_error_body`` for HTTP error bodies in either documented style. Import them from
``inworld_router``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from voiceagent.errors import ProtocolError
from voiceagent.protocols._wire import b64decode, loads_object

_PROTOCOL = "inworld router"
_ERROR_TEXT_LIMIT = 500


MAX_SSE_LINE = 1024 * 1024
"""The longest SSE line accepted (bytes); a longer one fails the reply (a 100 ms audio chunk
is about 13 KB of base64)."""


class SseLineTooLong(ProtocolError):
    """A line grew past the decoder's ``max_line`` before its end arrived."""


class SseDecoder:
    """Incremental SSE line decoder: feed raw bytes, get back complete ``data`` payloads.

    Lines may be split across feeds and end in ``\\n`` or ``\\r\\n``. Comments (``:``), blank
    lines and other fields (``event:``, ``id:``) are skipped. Each ``data:`` line is one
    payload (one space after the colon is dropped, as SSE specifies), which is how the router
    and its reference client frame events. Only the new bytes of each feed are searched for a
    line end (a line split into many pieces costs its length once), and a line longer than
    ``max_line`` raises ``SseLineTooLong`` as soon as it is that long.
    """

    def __init__(self, max_line: int = MAX_SSE_LINE) -> None:
        self.max_line = max_line
        self._pieces: list[bytes] = []  # the start of the current line, not yet ended
        self._pending = 0

    def feed(self, data: bytes) -> list[str]:
        """Consume ``data``; return the payloads of the lines it completed."""
        payloads: list[str] = []
        start = 0
        while (end := data.find(b"\n", start)) != -1:
            line = self._take(data[start:end])
            payload = _data_payload(line)
            if payload is not None:
                payloads.append(payload)
            start = end + 1
        if start < len(data):
            self._pending += len(data) - start
            self._check(self._pending)
            self._pieces.append(data[start:])
        return payloads

    def flush(self) -> list[str]:
        """At end of stream: the payload of a last line that had no newline, if any."""
        payload = _data_payload(self._take(b""))
        return [] if payload is None else [payload]

    def _take(self, end: bytes) -> bytes:
        """The current line completed by ``end``; the decoder starts a new one."""
        if not self._pieces:
            self._check(len(end))
            return end
        self._check(self._pending + len(end))
        self._pieces.append(end)
        line = b"".join(self._pieces)
        self._pieces, self._pending = [], 0
        return line

    def _check(self, size: int) -> None:
        if size > self.max_line:
            raise SseLineTooLong(f"{_PROTOCOL}: an SSE line is over {self.max_line} bytes")


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
