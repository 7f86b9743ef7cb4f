"""Inworld Router fake-side encoders, see docs/protocols.md, Inworld §2.

What the fake router streams back: ``sse`` events and ``SSE_DONE``, chat completion chunks
(``transcript_chunk``, ``audio_chunk``, ``text_chunk``, ``tool_call_chunks``,
``finish_chunk``) and HTTP ``error_body`` in the OpenAI or gRPC style. Import them from
``inworld_router``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import orjson

from voiceagent.protocols._wire import b64encode

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
