"""Per-call conversation history: user transcripts and assistant turns cut to what was heard."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from voiceagent.tools.calls import ToolCall, ToolResult
from voiceagent.tools.history import assistant_tool_calls, calls_of, consistent

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(slots=True)
class Turn:
    """One entry; assistant entries are updated in place as playback is confirmed."""

    role: Role
    text: str
    interrupted: bool = False
    response_id: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()  # assistant: calls its response made (they happened)
    tool_call_id: str | None = None  # tool: the call whose output `text` is


class History:
    """Ordered turns of one call. Mode-independent; the relay mode sends it to the Router."""

    def __init__(self, max_turns: int = 200) -> None:
        self._turns: list[Turn] = []
        self._max_turns = max_turns

    def add_user(self, text: str) -> Turn:
        """Record a final caller transcript (or DTMF rendered as text)."""
        return self._append(Turn("user", text))

    def open_assistant(self, response_id: str) -> Turn:
        """Start an assistant turn whose text grows only as the caller hears it."""
        return self._append(Turn("assistant", "", response_id=response_id))

    def add_tool_calls(self, response_id: str, calls: Sequence[ToolCall]) -> Turn:
        """The response `response_id` called tools: kept on its assistant turn (opened if it
        spoke nothing), whatever the caller heard of its words."""
        turn = next((t for t in reversed(self._turns) if t.response_id == response_id), None)
        if turn is None or turn.role != "assistant":
            turn = self.open_assistant(response_id)
        turn.tool_calls += tuple(calls)
        return turn

    def add_tool_result(self, result: ToolResult) -> Turn:
        """A call's output (also the `cancelled` one of a call cut by a barge-in)."""
        return self._append(Turn("tool", result.output, tool_call_id=result.call.call_id))

    def _append(self, turn: Turn) -> Turn:
        self._turns.append(turn)
        if len(self._turns) > self._max_turns:
            del self._turns[0]
        return turn

    @property
    def turns(self) -> tuple[Turn, ...]:
        return tuple(self._turns)

    def heard_text(self, response_id: str | None) -> str:
        """What the caller heard of the assistant turn of `response_id` ("" if none)."""
        if response_id is None:
            return ""
        return next((t.text for t in reversed(self._turns) if t.response_id == response_id), "")

    def restore(self, messages: Iterable[Mapping[str, Any]]) -> None:
        """Carry on a conversation from another leg of the call (failover, reconnect)."""
        for message in messages:
            role, text = message.get("role"), message.get("content") or ""
            if role == "user":
                self.add_user(text)
            elif role == "assistant":
                turn = self.open_assistant("restored")
                turn.text, turn.tool_calls = text, calls_of(dict(message))
            elif role == "tool":
                self._append(Turn("tool", text, tool_call_id=message.get("tool_call_id")))

    def messages(self) -> list[dict[str, Any]]:
        """Chat-completions messages: assistant text cut to what was heard (turns heard of
        nothing left out unless they called tools), tool calls with their results, and
        never a call without its result (`tools.history.consistent`)."""
        out: list[dict[str, Any]] = []
        for t in self._turns:
            if t.tool_calls:
                out.append(assistant_tool_calls(t.tool_calls, t.text))
            elif t.role == "tool":
                out.append({"role": "tool", "tool_call_id": t.tool_call_id, "content": t.text})
            elif t.text:
                out.append({"role": t.role, "content": t.text})
        return consistent(out)

    def __len__(self) -> int:
        return len(self._turns)
