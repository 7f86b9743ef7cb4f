"""Where a relay reply's clips end when `relay.first_clip_ms` is set: the caller hears sooner.

Twilio plays a `play` clip only once it has fetched the whole file, so a reply whose first clip
is a whole sentence is heard only when that sentence is synthesized. With `first_clip_ms`, the
first clip of a reply is closed after that much audio, at the next pause: the quietest 10 ms
frame within `PAUSE_SEARCH_MS` after it, or the first frame under `PAUSE_DBFS` there. The rest
of the sentence follows in the next clip, whose `play` goes out at once. The first clip is cut
only while the audio arrives at least `MIN_RATE` times faster than it plays (measured since the
reply's first audio): from a stream that slow (an overloaded Router, or server), the rest of the
sentence could not follow before the first clip has played, and the caller would hear a gap;
the clip then grows, and is cut once the stream is fast enough (or ends with its sentence).

Splitting must not starve the caller: once the first clip is closed, the caller's playout is
estimated (a closed clip starts `FETCH_MARGIN_S` after it is closed, or when the one before
it ends), and an open clip holding at least `MIN_CLIP_MS` is closed, at the quietest frame of
the audio just received, when the audio already closed would run out before it could be
fetched (`DEADLINE_LEAD_S` ahead). With a Router that synthesizes faster than real time, this
adds clips only to long sentences. No I/O: the speaker (`modes/relay_speaker.py`) feeds
audio with the time and carries out the cuts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voiceagent.audio_codec import ROUTER_RATE

FRAME_MS = 10
PAUSE_SEARCH_MS = 120
PAUSE_DBFS = -40.0
FETCH_MARGIN_S = 0.08
DEADLINE_LEAD_S = 0.3  # the fetch margin, the gap to the next audio chunk and loop lag
MIN_CLIP_MS = 100
MIN_RATE = 2.0  # audio ms received per wall ms, for the first cut
_FULL_SCALE = 32768.0


@dataclass(frozen=True, slots=True)
class Cut:
    """Close the open clip here; the audio after it goes to a new clip."""


CUT = Cut()


class ClipSplitter:
    """Decides the cuts of one reply's clips (see the module docstring); inert when
    `first_clip_ms` is None."""

    def __init__(self, first_clip_ms: int | None, rate: int = ROUTER_RATE) -> None:
        self._target = None if first_clip_ms is None else first_clip_ms * rate // 1000 * 2
        self._per_ms = rate // 1000 * 2
        self._frame = self._per_ms * FRAME_MS
        self._clip_bytes = 0  # audio passed to the open clip
        self._held = b""  # audio past the target, held while a pause is sought
        self._first_done = first_clip_ms is None
        self._heard_until: float | None = None
        self._first_at: float | None = None  # the reply's first audio arrived
        self._received = 0  # audio bytes received after the first chunk

    def clip_opened(self) -> None:
        """A new segment's clip opened (a cut opens its own)."""
        self._clip_bytes = 0

    def clip_closed(self, duration_ms: float, now: float) -> None:
        """A clip of `duration_ms` was closed at `now` (a cut, or its segment's end)."""
        if self._target is None:
            return
        if not self._first_done:  # the first segment ended before the target
            self._first_done, self._held = True, b""
        start = max(self._heard_until or now, now + FETCH_MARGIN_S)
        self._heard_until = start + duration_ms / 1000.0

    def flush(self) -> bytes:
        """Audio held back for the open clip (its segment ended): write it before closing."""
        held, self._held = self._held, b""
        return held

    def feed(self, pcm: bytes, now: float) -> list[bytes | Cut]:
        """The next audio of the open clip, as pieces in order: audio for the open clip, and a
        `CUT` before audio that goes to a new clip."""
        if self._target is None:
            return [pcm]
        if not self._first_done:
            if self._first_at is None:
                self._first_at = now
            else:
                self._received += len(pcm)
            return self._first_cut(pcm, now)
        due = self._heard_until is not None and now + DEADLINE_LEAD_S >= self._heard_until
        if due and self._clip_bytes >= MIN_CLIP_MS * self._per_ms:
            at = self._quietest_end(pcm, 0)
            return [*self._pass(pcm[:at]), CUT, *self._pass(pcm[at:], new=True)]
        return self._pass(pcm)

    def _pass(self, pcm: bytes, *, new: bool = False) -> list[bytes | Cut]:
        if new:
            self._clip_bytes = 0
        self._clip_bytes += len(pcm)
        return [pcm] if pcm else []

    def _fast_enough(self, now: float) -> bool:
        assert self._first_at is not None
        elapsed_ms = (now - self._first_at) * 1000.0
        return self._received / self._per_ms >= MIN_RATE * elapsed_ms

    def _first_cut(self, pcm: bytes, now: float) -> list[bytes | Cut]:
        assert self._target is not None
        if not self._fast_enough(now):  # release what is held: the target moves on
            held, self._held = self._held, b""
            return self._pass(held + pcm)
        room = max(self._target - self._clip_bytes, 0)
        out = self._pass(pcm[:room])
        self._held += pcm[room:]
        if not self._held:
            return out
        window = self._held[: PAUSE_SEARCH_MS * self._per_ms]
        quiet = self._first_quiet(window, len(window) // self._frame)
        if quiet is None and len(window) < PAUSE_SEARCH_MS * self._per_ms:
            return out  # keep looking for a pause
        at = quiet if quiet is not None else self._quietest_end(window, 0)
        held, self._held, self._first_done = self._held, b"", True
        return [*out, *self._pass(held[:at]), CUT, *self._pass(held[at:], new=True)]

    def _levels(self, pcm: bytes) -> np.ndarray:
        usable = len(pcm) - len(pcm) % self._frame
        samples = np.frombuffer(pcm[:usable], dtype="<i2").astype(np.float64)
        frames = samples.reshape(-1, self._frame // 2)
        return np.sqrt(np.mean(frames * frames, axis=1)) if len(frames) else np.zeros(0)

    def _first_quiet(self, pcm: bytes, frames: int) -> int | None:
        """The end (bytes) of the first frame under PAUSE_DBFS, or None."""
        threshold = _FULL_SCALE * 10 ** (PAUSE_DBFS / 20)
        levels = self._levels(pcm[: frames * self._frame])
        below = np.flatnonzero(levels < threshold)
        return int(below[0] + 1) * self._frame if len(below) else None

    def _quietest_end(self, pcm: bytes, start: int) -> int:
        """The end (bytes) of the quietest whole frame of `pcm` (all of it if none fits)."""
        levels = self._levels(pcm[start:])
        if not len(levels):
            return len(pcm)
        return start + (int(np.argmin(levels)) + 1) * self._frame
