"""What a simulated caller does (a script of steps) and what it heard (a record). No I/O.

``TwilioPlayback`` is Twilio's outbound buffer as twilio.md §1.5 describes it: a FIFO of
audio and marks, played at real time 20 ms per tick; a mark is echoed when it reaches the
head (at once if nothing is buffered); ``clear`` drops the audio and echoes every pending
mark. Audio played is attributed to the response named by the next echoed mark
(voiceagent names marks ``<response_id>:<n>``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

FRAME_BYTES = 160  # 20 ms of 8 kHz µ-law


@dataclass(frozen=True, slots=True)
class Speak:
    """The caller talks for ``ms`` (speech-like µ-law; ``seed`` varies the voice)."""

    ms: int
    seed: int = 1


@dataclass(frozen=True, slots=True)
class Silence:
    """The caller is quiet for ``ms`` (silence frames keep flowing, like Twilio)."""

    ms: int


@dataclass(frozen=True, slots=True)
class WaitForAgent:
    """Stay quiet until the agent is ``quiet`` (spoke since the caller's last words and its
    audio finished playing) or ``playing`` (``min_heard_ms`` of its current reply played)."""

    until: Literal["quiet", "playing"] = "quiet"
    min_heard_ms: int = 200
    timeout_ms: int = 10_000


@dataclass(frozen=True, slots=True)
class PressDigit:
    """A DTMF key press."""

    digit: str


@dataclass(frozen=True, slots=True)
class SendRaw:
    """Send a frame as-is (malformed-input tests): text, or bytes as a binary frame."""

    data: str | bytes


@dataclass(frozen=True, slots=True)
class HangUp:
    """The caller hangs up: Twilio sends ``stop`` and closes the socket."""


@dataclass(frozen=True, slots=True)
class Drop:
    """The connection drops: the socket closes without ``stop``."""


Step = Speak | Silence | WaitForAgent | PressDigit | SendRaw | HangUp | Drop


@dataclass(frozen=True, slots=True)
class CallScript:
    """The caller's steps in order; a script without HangUp/Drop ends with a hang-up."""

    steps: tuple[Step, ...]
    skip_start: bool = False  # send media before `start` (protocol-error tests)


@dataclass
class Outbound:
    """One frame voiceagent sent to Twilio, as the simulator saw it."""

    at: float
    event: str  # media, mark, clear
    detail: str | int  # bytes of audio, or the mark name


@dataclass
class CallRecord:
    """Everything a simulated call observed; times are ``time.monotonic()`` seconds."""

    call_sid: str
    to: str
    webhook_status: int = 0
    twiml: str = ""
    stream_url: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    action_url: str = ""
    ws_status: int | None = None  # HTTP status when the upgrade was refused
    started_at: float | None = None
    ended_at: float | None = None
    closed_by: Literal["server", "caller", ""] = ""
    close_code: int | None = None
    action_status: int | None = None
    action_twiml: str | None = None
    frames_sent: int = 0
    frame_times: list[float] = field(default_factory=list)  # with record_timing
    media_received: list[tuple[float, int]] = field(default_factory=list)  # with record_timing
    outbound: list[Outbound] = field(default_factory=list)
    heard: bytearray = field(default_factory=bytearray)
    heard_ms_by_response: dict[str, float] = field(default_factory=dict)
    first_heard_at: float | None = None
    speech_ends: list[float] = field(default_factory=list)
    heard_starts: list[float] = field(default_factory=list)  # playback resumed after silence
    clears: list[float] = field(default_factory=list)
    marks_echoed: list[str] = field(default_factory=list)
    warnings: list[int] = field(default_factory=list)  # 31950 / 31951, once each

    @property
    def heard_ms(self) -> float:
        return len(self.heard) / 8

    @property
    def greeting_latency_ms(self) -> float | None:
        """From the stream's ``start`` to the first agent audio played."""
        if self.started_at is None or self.first_heard_at is None:
            return None
        return round((self.first_heard_at - self.started_at) * 1000, 1)

    def turn_latencies_ms(self) -> list[float]:
        """For each caller utterance: its end to the next agent audio played."""
        out = []
        for end in self.speech_ends:
            nxt = next((t for t in self.heard_starts if t > end), None)
            if nxt is not None:
                out.append(round((nxt - end) * 1000, 1))
        return out

    def responses_heard(self) -> list[str]:
        """Response ids in the order the caller first heard them."""
        return list(self.heard_ms_by_response)

    def summary(self) -> dict[str, object]:
        """What the caller heard and when, for printing (``voiceagent simulate``)."""
        return {
            "call_sid": self.call_sid,
            "to": self.to,
            "webhook_status": self.webhook_status,
            "heard_ms": self.heard_ms,
            "heard_ms_by_response": {k: round(v) for k, v in self.heard_ms_by_response.items()},
            "greeting_latency_ms": self.greeting_latency_ms,
            "turn_latencies_ms": self.turn_latencies_ms(),
            "barge_in_clears": len(self.clears),
            "closed_by": self.closed_by,
            "action_twiml": self.action_twiml,
            "twilio_warnings": self.warnings,
        }


class TwilioPlayback:
    """Twilio's outbound buffer: FIFO of audio and marks, played 160 bytes per tick."""

    def __init__(self) -> None:
        self._queue: deque[bytes | str] = deque()
        self._unconfirmed = 0  # bytes played since the last echoed mark
        self._idle = True  # nothing played since the buffer last ran dry
        self.buffered = 0

    def add_audio(self, audio: bytes) -> None:
        self._queue.append(audio)
        self.buffered += len(audio)

    def add_mark(self, name: str) -> list[str]:
        """Queue a mark; returns it at once when no audio is buffered."""
        if not self._queue:
            return [name]
        self._queue.append(name)
        return []

    def tick(self, record: CallRecord, now: float) -> list[str]:
        """Play up to one frame; return the marks reached (echoed as played)."""
        echoes = self._head_marks(record)
        want = FRAME_BYTES
        while want and self._queue and isinstance(self._queue[0], bytes):
            chunk = self._queue.popleft()
            assert isinstance(chunk, bytes)
            played, rest = chunk[:want], chunk[want:]
            if rest:
                self._queue.appendleft(rest)
            if self._idle:
                record.heard_starts.append(now)
                self._idle = False
            if record.first_heard_at is None:
                record.first_heard_at = now
            record.heard += played
            self._unconfirmed += len(played)
            self.buffered -= len(played)
            want -= len(played)
            echoes += self._head_marks(record)
        if not self._queue:
            self._idle = True
        return echoes

    def _head_marks(self, record: CallRecord) -> list[str]:
        echoes = []
        while self._queue and isinstance(self._queue[0], str):
            name = self._queue.popleft()
            assert isinstance(name, str)
            response = name.rsplit(":", 1)[0]
            heard = record.heard_ms_by_response
            heard[response] = heard.get(response, 0.0) + self._unconfirmed / 8
            self._unconfirmed = 0
            echoes.append(name)
        return echoes

    def clear(self, record: CallRecord) -> list[str]:
        """Drop buffered audio; every pending mark is echoed (flushed, not played)."""
        marks = [m for m in self._queue if isinstance(m, str)]
        if marks and self._unconfirmed:
            response = marks[0].rsplit(":", 1)[0]
            heard = record.heard_ms_by_response
            heard[response] = heard.get(response, 0.0) + self._unconfirmed / 8
        self._unconfirmed = 0
        self._queue.clear()
        self.buffered = 0
        self._idle = True
        return marks
