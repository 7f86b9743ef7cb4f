"""Streamed ``tool_calls`` of a Router chat completion (OpenAI chunk format), joined.

The codec (``protocols/inworld_router.py``) reads each chunk's ``delta.tool_calls`` into
``ToolCallDelta`` pieces (``RouterChunk.tool_calls``). The pure ``ToolCallAccumulator`` joins
them: per ``index``, the first piece carries the ``id`` and ``function.name``, every piece may
add to ``function.arguments``. ``tool_call_chunks`` is the fake side's encoder for ``ToolCall``s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from voiceagent.protocols import inworld_router as ir
from voiceagent.protocols.inworld_router import ToolCallDelta, parse_tool_call_deltas
from voiceagent.tools.calls import ToolCall

__all__ = ["ToolCallAccumulator", "ToolCallDelta", "parse_tool_call_deltas", "tool_call_chunks"]


@dataclass(slots=True)
class _Partial:
    id: str | None = None
    name: str = ""
    arguments: str = ""


class ToolCallAccumulator:
    """Joins streamed tool-call pieces, by index, into whole ``ToolCall``s."""

    def __init__(self) -> None:
        self._calls: dict[int, _Partial] = {}

    def feed(self, pieces: Iterable[ToolCallDelta]) -> None:
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
    """Chat-completion chunks streaming ``calls`` (the codec's encoder): a head piece (id,
    name) per call, then its arguments in ``piece_chars`` pieces. The finish chunk is the
    caller's (``finish_reason: "tool_calls"``)."""
    triples = [(c.call_id, c.name, c.arguments) for c in calls]
    return ir.tool_call_chunks(completion_id, model, triples, piece_chars)
