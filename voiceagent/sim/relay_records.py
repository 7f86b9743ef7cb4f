"""What the simulated ConversationRelay records of a call: its clips, agent turns and messages.

A `ClipRecord` is one fetched `play` clip and what `check_clip` found in it (Twilio plays a WAV
at 8 kHz, µ-law or 16-bit PCM, mono, with a duration); a `TurnRecord` is one agent reply as the
caller experienced it; `RelayCallRecord` holds them with the call's sessions. No I/O.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from voiceagent.audio import WavFormat, parse_wav
from voiceagent.errors import ProtocolError
from voiceagent.sim.script import CallProtocol, CallRecord

WAV_TYPES = ("audio/wav", "audio/x-wav", "audio/wave")


@dataclass(slots=True)
class ClipRecord:
    """One fetched `play` clip and what the simulated Twilio found in it."""

    url: str
    play_received: float
    fetch_done: float | None = None
    status: int = 0
    content_type: str = ""
    content_length: int | None = None
    wav_format: int = 0
    sample_rate: int = 0
    channels: int = 0
    bits_per_sample: int = 0
    duration_ms: float = 0.0
    error: str = ""
    played_at: float | None = None  # playback started (monotonic)
    played_until: float | None = None  # playback ended, unless cut by a barge-in

    @property
    def valid(self) -> bool:
        return not self.error


@dataclass(slots=True)
class TurnRecord:
    """One agent reply as the caller experienced it (turn 0 is the greeting)."""

    prompt: str | None
    sent_at: float
    first_play_at: float | None = None
    first_clip_fetched_at: float | None = None
    first_text_at: float | None = None
    clips: list[ClipRecord] = field(default_factory=list)
    text: str = ""
    heard_ms: float = 0.0
    interrupted: bool = False
    first_heard_at: float | None = None  # its first audio started playing
    preempted: bool = False  # a newer reply's first message cut its queued audio

    @property
    def prompt_to_first_play_ms(self) -> float | None:
        return _ms(self.sent_at, self.first_play_at)

    @property
    def prompt_to_clip_fetched_ms(self) -> float | None:
        return _ms(self.sent_at, self.first_clip_fetched_at)

    @property
    def prompt_to_heard_ms(self) -> float | None:
        """Prompt sent → the reply's first audio started playing (the caller hears it)."""
        return _ms(self.sent_at, self.first_heard_at)

    def clip_gaps_ms(self, speed: float = 1.0) -> list[float]:
        """Silences between consecutive clips of this reply that played whole (agent ms: the
        simulated clock runs `speed` times faster)."""
        gaps = []
        for a, b in itertools.pairwise(self.clips):
            if a.played_until is not None and b.played_at is not None:
                gaps.append((b.played_at - a.played_until) * 1000.0 * speed)
        return gaps


@dataclass(slots=True)
class RelayCallRecord(CallRecord):
    """A ConversationRelay call: the common record plus its sessions, turns and messages."""

    protocol: CallProtocol | None = "conversation-relay"
    relay_attributes: dict[str, str] = field(default_factory=dict)
    applied: dict[str, Any] = field(default_factory=dict)  # mid-call `config` / `language`
    turns: list[TurnRecord] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    errors_sent: list[str] = field(default_factory=list)  # `error`s Twilio answered with
    unreported_inputs: list[str] = field(default_factory=list)  # said while not reported
    handoff_data: str | None = None
    session_status: str = ""
    sessions: int = 0
    reconnects: int = 0  # applicationReconnect: sockets reopened without an action callback
    inputs_sent: list[dict[str, Any]] = field(default_factory=list)  # prompt/dtmf, in order
    replayed: int = 0  # inputs sent again after a reconnect (at-least-once reading)

    @property
    def clips(self) -> list[ClipRecord]:
        return [c for t in self.turns for c in t.clips]

    @property
    def heard_ms(self) -> float:
        return sum(t.heard_ms for t in self.turns)

    @property
    def greeting_latency_ms(self) -> float | None:
        """From the session's start to the greeting's first ``play``."""
        greeting = self.turns[0] if self.turns and self.turns[0].prompt is None else None
        return None if greeting is None else greeting.prompt_to_first_play_ms

    def turn_latencies_ms(self) -> list[float]:
        """For each caller input: its message to the reply's first ``play``."""
        firsts = [t.prompt_to_first_play_ms for t in self.turns if t.prompt is not None]
        return [f for f in firsts if f is not None]

    @property
    def barge_ins(self) -> int:
        return sum(1 for t in self.turns if t.interrupted)


def _ms(start: float, end: float | None) -> float | None:
    return None if end is None else round((end - start) * 1000, 3)


def check_clip(record: ClipRecord, body: bytes) -> str:
    """Fill `record` from a fetched clip; the reason Twilio could not play it, or ""."""
    if record.status != 200:
        return f"HTTP {record.status}"
    if record.content_type not in WAV_TYPES:
        return f"Content-Type {record.content_type!r} is not a WAV type"
    if record.content_length is not None and record.content_length != len(body):
        return f"Content-Length {record.content_length} but {len(body)} bytes"
    try:
        info = parse_wav(body)
    except ProtocolError as exc:
        return str(exc)
    record.wav_format, record.sample_rate = info.fmt, info.sample_rate
    record.channels, record.bits_per_sample = info.channels, info.bits_per_sample
    record.duration_ms = info.duration_ms
    expected_bits = {int(WavFormat.ULAW): 8, int(WavFormat.PCM): 16}.get(info.fmt, 0)
    if info.sample_rate != 8000 or info.channels != 1 or info.bits_per_sample != expected_bits:
        return (
            f"not 8 kHz mono µ-law/PCM: fmt {info.fmt}, {info.sample_rate} Hz, {info.channels} ch"
        )
    if info.duration_ms <= 0:
        return "empty clip"
    return ""
