"""Playback and barge-in tracking, shared by both modes. No I/O: events in, commands out.

The tracker knows which agent audio was handed to the phone side, what the caller has heard,
and what a barge-in must do. Two ways of knowing "heard":

- ``confirm_by_marks=True`` (Media Streams): audio counts as heard only when a mark sent
  after it is echoed. Marks need not follow every chunk: a mark confirms every chunk before it,
  so marks every N ms keep truncation accurate to N ms. Marks echoed because of a `clear` are
  flush echoes, not playback, and are ignored.
- ``confirm_by_marks=False`` (ConversationRelay clips): audio counts as heard once handed
  over, until an `interrupt` says how many milliseconds were actually played.

Each chunk of audio may carry the text it speaks; the history's assistant turn holds the text
of the chunks heard, so it never contains words the caller did not hear. State stays bounded
over a call of any length: heard text grows incrementally, finished responses are forgotten.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from voiceagent.session.commands import (
    AbortStream,
    CancelResponse,
    ClearPlayback,
    Command,
    TruncateItem,
)
from voiceagent.session.history import History, Turn

_EPS = 1e-6
CANCELLED_REMEMBERED = 32
"""Cancelled response ids kept after being forgotten, so their late audio is still dropped."""


@dataclass(slots=True)
class _Chunk:
    end_ms: float  # cumulative audio of the response up to the end of this chunk
    text: str


@dataclass(slots=True)
class ResponsePlayback:
    """Playback state of one agent response."""

    response_id: str
    item_id: str | None
    turn: Turn
    generating: bool = True
    cancelled: bool = False
    sent_ms: float = 0.0
    heard_ms: float = 0.0
    chunks: list[_Chunk] = field(default_factory=list)
    heard_chunks: int = 0  # chunks[:heard_chunks] are in turn.text
    first_heard: bool = False
    marks_pending: int = 0

    def advance_heard(self, heard_ms: float) -> None:
        """Move the heard point forward; append the newly heard chunks' text (O(new))."""
        self.heard_ms = max(self.heard_ms, heard_ms)
        chunks, i = self.chunks, self.heard_chunks
        if i < len(chunks) and chunks[i].end_ms <= self.heard_ms + _EPS:
            parts = []
            while i < len(chunks) and chunks[i].end_ms <= self.heard_ms + _EPS:
                parts.append(chunks[i].text)
                i += 1
            self.turn.text += "".join(parts)
            self.heard_chunks = i

    def recut(self, heard_ms: float) -> None:
        """Move the heard point back (an interrupt said less was played)."""
        self.heard_ms = min(self.heard_ms, heard_ms)
        kept = [c for c in self.chunks if c.end_ms <= self.heard_ms + _EPS]
        self.heard_chunks = len(kept)
        self.turn.text = "".join(c.text for c in kept)


@dataclass(frozen=True, slots=True)
class MarkEcho:
    """What a genuine (non-flush) mark echo proved."""

    response_id: str
    heard_ms: float
    first: bool  # the first proof that the caller hears this response


class PlaybackTracker:
    """Tracks agent audio per response and turns caller speech into barge-in commands."""

    def __init__(self, history: History, *, confirm_by_marks: bool = True) -> None:
        self._history = history
        self._confirm_by_marks = confirm_by_marks
        self._responses: dict[str, ResponsePlayback] = {}
        self._current: ResponsePlayback | None = None
        self._pending: deque[tuple[str, ResponsePlayback, float]] = deque()
        self._flushed: set[str] = set()
        self._cancelled: deque[str] = deque(maxlen=CANCELLED_REMEMBERED)
        self._mark_seq = 0
        self.barge_ins = 0

    # -- agent side ---------------------------------------------------------------------------
    def begin_response(self, response_id: str, item_id: str | None = None) -> ResponsePlayback:
        """An upstream response started; its audio will follow. Older finished responses whose
        audio is resolved are forgotten here, so state never grows with the call's length."""
        existing = self._responses.get(response_id)
        if existing is not None:
            if item_id and existing.item_id is None:
                existing.item_id = item_id
            return existing
        for old in [r for r in self._responses.values() if not r.generating]:
            self.forget(old.response_id)
        resp = ResponsePlayback(response_id, item_id, self._history.open_assistant(response_id))
        self._responses[response_id] = resp
        self._current = resp
        return resp

    def accepts_audio(self, response_id: str) -> bool:
        """False for a response cancelled by barge-in: its late audio must be dropped."""
        resp = self._responses.get(response_id)
        if resp is None:
            return response_id not in self._cancelled
        return not resp.cancelled

    def audio_sent(
        self, response_id: str, duration_ms: float, text: str = "", *, mark: bool = True
    ) -> str | None:
        """Audio of `response_id` was handed to the phone side; returns the name of the mark to
        send after it, or None with ``mark=False`` (a later mark will confirm this chunk)."""
        resp = self._responses.get(response_id) or self.begin_response(response_id)
        resp.sent_ms += duration_ms
        resp.chunks.append(_Chunk(resp.sent_ms, text))
        if not self._confirm_by_marks:
            resp.advance_heard(resp.sent_ms)
            resp.first_heard = True
            return None
        if not mark:
            return None
        self._mark_seq += 1
        name = f"{response_id}:{self._mark_seq}"
        self._pending.append((name, resp, resp.sent_ms))
        resp.marks_pending += 1
        return name

    def response_finished(self, response_id: str) -> None:
        """Upstream finished generating `response_id` (done, failed or cancelled)."""
        resp = self._responses.get(response_id)
        if resp is not None:
            resp.generating = False

    # -- phone side -----------------------------------------------------------------------------
    def mark_echoed(self, name: str) -> MarkEcho | None:
        """A mark came back. Flush echoes (after `clear`) and unknown names prove nothing."""
        if name in self._flushed:
            self._flushed.discard(name)
            return None
        if not any(n == name for n, _, _ in self._pending):
            return None
        while self._pending:  # echoes come back in send order
            n, resp, end_ms = self._pending.popleft()
            resp.marks_pending -= 1
            first = not resp.first_heard
            resp.first_heard = True
            resp.advance_heard(end_ms)
            if n == name:
                return MarkEcho(resp.response_id, end_ms, first)
        return None  # pragma: no cover - loop always returns when name is pending

    @property
    def playing(self) -> bool:
        """True while agent audio was sent and is not yet confirmed played."""
        return bool(self._pending)

    @property
    def generating(self) -> bool:
        return self._current is not None and self._current.generating

    def speech_started(self) -> list[Command]:
        """Caller speech detected. Barge in if agent audio is playing, pending or generating."""
        resp = self._current
        if not self._pending and (resp is None or not resp.generating or resp.cancelled):
            return []
        self.barge_ins += 1
        commands: list[Command] = []
        if self._pending:
            commands.append(ClearPlayback())
            self._flushed.update(n for n, _, _ in self._pending)
            for _, r, _ in self._pending:
                r.marks_pending -= 1
            self._pending.clear()
        if resp is not None and not resp.cancelled:
            if resp.generating:
                commands.append(CancelResponse(resp.response_id))
            self._cut(resp)
            if resp.item_id and resp.sent_ms > resp.heard_ms:
                commands.append(TruncateItem(resp.item_id, int(resp.heard_ms)))
        return commands

    def interrupted(self, heard_ms: float | None, heard_text: str | None = None) -> list[Command]:
        """ConversationRelay `interrupt`: the caller heard `heard_ms` of the current reply."""
        resp = self._current
        if resp is None or resp.cancelled:
            return []
        self.barge_ins += 1
        commands: list[Command] = [AbortStream(resp.response_id)] if resp.generating else []
        if heard_ms is not None:
            resp.recut(heard_ms)
        self._cut(resp)
        if heard_text:  # Twilio's own account of the words played wins when it gives one
            resp.turn.text = heard_text
        return commands

    def _cut(self, resp: ResponsePlayback) -> None:
        resp.cancelled = True
        resp.generating = False
        resp.turn.interrupted = True
        self._cancelled.append(resp.response_id)

    def forget(self, response_id: str) -> None:
        """Drop per-response state once it can no longer change (bounded memory)."""
        resp = self._responses.get(response_id)
        if resp is not None and not resp.generating and resp.marks_pending <= 0:
            del self._responses[response_id]
            if self._current is resp:
                self._current = None

    def __len__(self) -> int:
        """Responses currently tracked (bounded: finished ones are forgotten)."""
        return len(self._responses)
