"""Streamed ``tool_calls`` of a Router chat completion (OpenAI chunk format), both sides.

Client side: ``parse_tool_call_deltas`` reads ``choices[0].delta.tool_calls`` of one chunk, and
the pure ``ToolCallAccumulator`` joins the pieces: per ``index``, the first piece carries the
``id`` and ``function.name``, every piece may add to ``function.arguments``. Fake side:
``tool_call_chunks`` encodes calls that way, arguments cut in pieces.

Interim home: ``ToolCallDelta``, its parser and the encoder belong in
``protocols/inworld_router.py`` (``RouterChunk.tool_calls``); the accumulator only needs
objects with ``index``, ``id``, ``name`` and ``arguments``, so it will not change when they move.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from voiceagent.errors import ProtocolError
from voiceagent.tools.calls import ToolCall

_PROTOCOL = "inworld router"


class ToolCallPiece(Protocol):
    """One streamed piece of a tool call (what ``ToolCallDelta`` is)."""

    @property
    def index(self) -> int: ...
    @property
    def id(self) -> str | None: ...
    @property
    def name(self) -> str | None: ...
    @property
    def arguments(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """``delta.tool_calls[i]``: ``{"index", "id"?, "function": {"name"?, "arguments"?}}``."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


def parse_tool_call_deltas(value: Any) -> tuple[ToolCallDelta, ...]:
    """The ``delta.tool_calls`` list of one chunk (None → no pieces); ProtocolError if malformed."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ProtocolError(f"{_PROTOCOL}: delta.tool_calls must be a list")
    return tuple(_delta(entry, position) for position, entry in enumerate(value))


def _delta(entry: Any, position: int) -> ToolCallDelta:
    where = f"delta.tool_calls[{position}]"
    if not isinstance(entry, dict):
        raise ProtocolError(f"{_PROTOCOL}: {where} must be an object")
    function = entry.get("function") or {}
    index = entry.get("index", position)
    call_id, name = entry.get("id"), function.get("name") if isinstance(function, dict) else None
    arguments = function.get("arguments") if isinstance(function, dict) else None
    if (
        not isinstance(function, dict)
        or not isinstance(index, int)
        or not isinstance(call_id, str | None)
        or not isinstance(name, str | None)
        or not isinstance(arguments, str | None)
    ):
        raise ProtocolError(f"{_PROTOCOL}: {where} has fields of the wrong type")
    return ToolCallDelta(index, call_id or None, name or None, arguments or "")


@dataclass(slots=True)
class _Partial:
    id: str | None = None
    name: str = ""
    arguments: str = ""


class ToolCallAccumulator:
    """Joins streamed tool-call pieces, by index, into whole ``ToolCall``s."""

    def __init__(self) -> None:
        self._calls: dict[int, _Partial] = {}

    def feed(self, pieces: Iterable[ToolCallPiece]) -> None:
        for piece in pieces:
            call = self._calls.setdefault(piece.index, _Partial())
            call.id = call.id or piece.id  # the first id wins (some providers repeat it)
            call.name = call.name or (piece.name or "")  # likewise the name
            call.arguments += piece.arguments

    def __bool__(self) -> bool:
        return bool(self._calls)

    def calls(self) -> list[ToolCall]:
        """The calls so far, in index order; a call the stream gave no id gets ``call_<index>``."""
        return [
            ToolCall(c.id or f"call_{index}", c.name, c.arguments)
            for index, c in sorted(self._calls.items())
        ]


def tool_call_chunks(
    completion_id: str, model: str, calls: Sequence[ToolCall], piece_chars: int = 8
) -> list[dict[str, Any]]:
    """Chat-completion chunks streaming ``calls``: a head piece (id, name, empty arguments)
    per call, then its arguments in ``piece_chars`` pieces. The finish chunk is the caller's
    (``finish_reason: "tool_calls"``)."""
    chunks = []
    for index, call in enumerate(calls):
        head = {
            "index": index,
            "id": call.call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        delta: dict[str, Any] = {"tool_calls": [head]}
        if index == 0:
            delta = {"role": "assistant", "content": None, **delta}
        chunks.append(_chunk(completion_id, model, delta))
        step = max(1, piece_chars)
        for start in range(0, len(call.arguments), step):
            text = call.arguments[start : start + step]
            piece = {"index": index, "function": {"arguments": text}}
            chunks.append(_chunk(completion_id, model, {"tool_calls": [piece]}))
    return chunks


def _chunk(completion_id: str, model: str, delta: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }
