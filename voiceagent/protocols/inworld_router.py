"""Inworld Router chat completions with LLM + TTS over SSE, see docs/protocols.md, Inworld §2.

The one module to import: it holds the request side (``ChatRequest`` / ``dump_request`` for
the client, ``parse_request`` for the fake) and re-exports the streamed response decoding
(``inworld_router_stream``: ``SseDecoder``, ``parse_event``, ``RouterChunk`` ...,
``parse_error_body``) and the fake-side chunk encoders (``inworld_router_encoders``: ``sse``,
``transcript_chunk`` ...), so ``from voiceagent.protocols import inworld_router as ir`` gives
them all.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ConfigDict, model_validator

from voiceagent.protocols._wire import WireModel, loads_object, validate
from voiceagent.protocols.inworld_router_encoders import (
    SSE_DONE,
    audio_chunk,
    error_body,
    finish_chunk,
    sse,
    text_chunk,
    tool_call_chunks,
    transcript_chunk,
)
from voiceagent.protocols.inworld_router_stream import (
    RouterChunk,
    RouterDone,
    RouterEvent,
    RouterStreamError,
    SseDecoder,
    SseLineTooLong,
    ToolCallDelta,
    parse_error_body,
    parse_event,
    parse_tool_call_deltas,
)

__all__ = [
    "SSE_DONE",
    "AudioRequest",
    "ChatMessage",
    "ChatRequest",
    "RouterChunk",
    "RouterDone",
    "RouterEvent",
    "RouterStreamError",
    "SseDecoder",
    "SseLineTooLong",
    "ToolCallDelta",
    "audio_chunk",
    "dump_request",
    "error_body",
    "finish_chunk",
    "parse_error_body",
    "parse_event",
    "parse_request",
    "parse_tool_call_deltas",
    "sse",
    "text_chunk",
    "tool_call_chunks",
    "transcript_chunk",
]

_PROTOCOL = "inworld router"


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
