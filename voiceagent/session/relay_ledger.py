"""Which caller inputs a relay call has handled, for ConversationRelay's `applicationReconnect`.
No I/O.

Twilio replays the events it buffered while the app's socket was down, and may replay some the
app had already received (docs/protocol-updates-2026.md: not documented either way). Each final
`prompt` / `dtmf` gets a fingerprint of its content and its position in the call; a resumed leg
skips inputs whose fingerprint the checkpoint already lists (in order, right after the resume),
so nothing is answered twice. `pending` is the input whose reply has not finished: a resumed leg
answers it again unless newer input supersedes it.
"""

from __future__ import annotations

from collections import deque

from voiceagent.store.live.checkpoint import ANSWERED_KEPT, Checkpoint, fingerprint


class InputLedger:
    """Fingerprints of the call's handled inputs (see the module docstring)."""

    def __init__(self, checkpoint: Checkpoint | None = None) -> None:
        self.answered: deque[str] = deque(maxlen=ANSWERED_KEPT)
        self.inputs = 0
        self.pending: str | None = None
        self.reconnects = 0
        self._replayable: list[str] = []
        self._first_seq = 0
        if checkpoint is not None:
            self.answered.extend(checkpoint.answered)
            self.inputs = checkpoint.inputs
            self.pending = checkpoint.pending
            self.reconnects = checkpoint.reconnects + 1
            self._replayable = list(checkpoint.answered)
            self._first_seq = checkpoint.inputs - len(checkpoint.answered)
        self.replays_skipped = 0

    def admit(self, kind: str, value: str) -> str | None:
        """The fingerprint of a new input (now counted), or None for a replay of one handled
        already. The replay window closes at the first input that is not such a replay."""
        for offset, known in enumerate(self._replayable):
            if fingerprint(kind, value, self._first_seq + offset) == known:
                self._first_seq += offset + 1
                del self._replayable[: offset + 1]
                self.replays_skipped += 1
                return None
        self._replayable.clear()
        mark = fingerprint(kind, value, self.inputs)
        self.inputs += 1
        self.answered.append(mark)
        return mark

    def checkpoint(self, leg: str, history: tuple[dict[str, object], ...]) -> Checkpoint:
        """What a reconnected leg of `leg` resumes from."""
        return Checkpoint(
            leg=leg, history=history, answered=tuple(self.answered), pending=self.pending,
            reconnects=self.reconnects, inputs=self.inputs,
        )  # fmt: skip
