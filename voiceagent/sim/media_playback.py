"""The simulated Media Streams call's playback side, and what the caller observed. No I/O.

``TwilioPlayback`` is Twilio's outbound buffer as docs/protocols.md, Twilio §1.5 describes it: a
FIFO of audio and marks, played at real time 20 ms per tick; a mark is echoed when it reaches the
head (at once if nothing is buffered); ``clear`` drops the audio and echoes every pending
mark. Audio played is attributed to the response named by the next echoed mark
(voiceagent names marks ``<response_id>:<n>``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from voiceagent.sim.script import CallProtocol, CallRecord

FRAME_BYTES = 160  # 20 ms of 8 kHz µ-law


@dataclass
class Outbound:
    """One frame voiceagent sent to Twilio, as the simulator saw it."""

    at: float
    event: str  # media, mark, clear
    detail: str | int  # bytes of audio, or the mark name


@dataclass(slots=True)
class MediaCallRecord(CallRecord):
    """A Media Streams call: the common record plus what the stream carried."""

    protocol: CallProtocol | None = "media-streams"
    started_at: float | None = None
    ended_at: float | None = None
    frames_sent: int = 0
    frame_times: list[float] = field(default_factory=list)  # with record_timing
    # with record_timing: when the caller's task read each media frame, and its size
    media_received: list[tuple[float, int]] = field(default_factory=list)
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

    @property
    def barge_ins(self) -> int:
        return len(self.clears)

    def responses_heard(self) -> list[str]:
        """Response ids in the order the caller first heard them."""
        return list(self.heard_ms_by_response)

    def summary(self) -> dict[str, object]:
        heard = {k: round(v) for k, v in self.heard_ms_by_response.items()}
        return {
            **CallRecord.summary(self),
            "heard_ms_by_response": heard,
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

    def tick(self, record: MediaCallRecord, now: float) -> list[str]:
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

    def _head_marks(self, record: MediaCallRecord) -> list[str]:
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

    def clear(self, record: MediaCallRecord) -> list[str]:
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
