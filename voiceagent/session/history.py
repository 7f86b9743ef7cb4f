"""Per-call conversation history: user transcripts and assistant turns cut to what was heard."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Role = Literal["system", "user", "assistant"]


@dataclass(slots=True)
class Turn:
    """One entry; assistant entries are updated in place as playback is confirmed."""

    role: Role
    text: str
    interrupted: bool = False
    response_id: str | None = None


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

    def restore(self, messages: Iterable[Mapping[str, str]]) -> None:
        """Carry on a conversation from another leg of the call (failover, reconnect)."""
        for message in messages:
            role, text = message.get("role"), message.get("content", "")
            if role == "user":
                self.add_user(text)
            elif role == "assistant":
                self.open_assistant("restored").text = text

    def messages(self) -> list[dict[str, str]]:
        """Chat-completions messages, skipping assistant turns the caller heard nothing of."""
        return [{"role": t.role, "content": t.text} for t in self._turns if t.text]

    def __len__(self) -> int:
        return len(self._turns)
