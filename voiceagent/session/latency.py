"""Per-turn latency, defined once for both modes (see README, "Latency definitions").

All times are `time.monotonic()` seconds supplied by the mode; figures are milliseconds.

- response_ms: turn end known to the server → first agent audio handed to Twilio
  (realtime: Inworld `speech_stopped` → first `media`; relay: final `prompt` → first `play`).
- upstream_ttfb_ms: turn end → first upstream audio byte (audio delta / first SSE audio).
- overhead_ms: response_ms - upstream_ttfb_ms: the time voiceagent itself added.
- fetch_ms (relay): turn end → Twilio finished fetching the first clip.
- heard_ms (realtime): turn end → echo of the response's first mark.
- greeting turns measure from call answered (the phone socket's start/setup).
- barge_in_ms: caller speech detected (`speech_started` / `interrupt`) → `clear` sent or
  stream aborted.
- tool_ms: time the turn spent running tools (model's arguments complete → results back),
  apart from the model's own time; `tool_calls` counts the calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

TurnKind = Literal["greeting", "turn"]
KEPT_TURNS = 64
"""Turns a call keeps in memory (older ones are forgotten once reported)."""


def _ms(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start) * 1000.0, 3)


@dataclass(slots=True)
class TurnTiming:
    """Timestamps of one agent turn; properties derive the published figures."""

    index: int
    kind: TurnKind
    started: float
    upstream_first_byte: float | None = None
    first_audio_out: float | None = None
    clip_fetched: float | None = None
    first_heard: float | None = None
    barge_in_detected: float | None = None
    barge_in_reacted: float | None = None
    user_text: str = ""
    agent_text: str = ""
    interrupted: bool = False
    failed: str | None = None
    response_id: str | None = None  # the agent response answering this turn
    reported: bool = False  # handed to the sink (then it may be forgotten)
    tool_calls: int = 0
    tool_ms: float | None = None  # None: the turn called no tool

    @property
    def response_ms(self) -> float | None:
        return _ms(self.started, self.first_audio_out)

    @property
    def upstream_ttfb_ms(self) -> float | None:
        return _ms(self.started, self.upstream_first_byte)

    @property
    def overhead_ms(self) -> float | None:
        if self.response_ms is None or self.upstream_ttfb_ms is None:
            return None
        return round(self.response_ms - self.upstream_ttfb_ms, 3)

    @property
    def fetch_ms(self) -> float | None:
        return _ms(self.started, self.clip_fetched)

    @property
    def heard_ms(self) -> float | None:
        return _ms(self.started, self.first_heard)

    @property
    def barge_in_ms(self) -> float | None:
        return _ms(self.barge_in_detected, self.barge_in_reacted)

    def figures(self) -> dict[str, float | None]:
        """The latency figures of this turn, by name (None where not measured)."""
        return {
            "response_ms": self.response_ms,
            "upstream_ttfb_ms": self.upstream_ttfb_ms,
            "overhead_ms": self.overhead_ms,
            "fetch_ms": self.fetch_ms,
            "heard_ms": self.heard_ms,
            "barge_in_ms": self.barge_in_ms,
            "tool_ms": self.tool_ms,
        }

    def tools_ran(self, calls: int, ms: float) -> None:
        """`calls` tool calls ran for this turn, taking `ms` (wall time, calls in parallel)."""
        self.tool_calls += calls
        self.tool_ms = round((self.tool_ms or 0.0) + ms, 3)


@dataclass(slots=True)
class LatencyClock:
    """Collects TurnTimings for one call. The mode reports events; nothing here awaits.

    Bounded over a call of any length: once more than KEPT_TURNS are held, the oldest turns
    already reported to the sink are forgotten (`index` keeps counting)."""

    turns: list[TurnTiming] = field(default_factory=list)
    current: TurnTiming | None = None
    started: int = 0  # turns started so far (the next turn's index)

    def start_turn(self, now: float, kind: TurnKind = "turn", user_text: str = "") -> TurnTiming:
        """The caller's turn ended (or the call was answered, for a greeting)."""
        self.current = TurnTiming(self.started, kind, now, user_text=user_text)
        self.started += 1
        self.turns.append(self.current)
        if len(self.turns) > KEPT_TURNS:
            cut = len(self.turns) - KEPT_TURNS
            self.turns = [t for t in self.turns[:cut] if not t.reported] + self.turns[cut:]
        return self.current

    def upstream_byte(self, now: float) -> None:
        if self.current is not None and self.current.upstream_first_byte is None:
            self.current.upstream_first_byte = now

    def audio_out(self, now: float) -> bool:
        """First agent audio of the turn handed to Twilio; True the first time only."""
        if self.current is not None and self.current.first_audio_out is None:
            self.current.first_audio_out = now
            return True
        return False

    def clip_fetched(self, now: float) -> None:
        if self.current is not None and self.current.clip_fetched is None:
            self.current.clip_fetched = now

    def heard(self, now: float) -> None:
        if self.current is not None and self.current.first_heard is None:
            self.current.first_heard = now

    def barge_in(self, detected: float, reacted: float) -> None:
        if self.current is not None and self.current.barge_in_detected is None:
            self.current.barge_in_detected = detected
            self.current.barge_in_reacted = reacted
            self.current.interrupted = True
