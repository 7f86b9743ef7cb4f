"""The configured filler of a reconnect gap (`upstream_reconnect.filler`), without I/O.

A gap starts when the Inworld session drops. It lasts while the new session is being opened
and, when the drop cut a reply (which the new session is asked for again), until the new
session's first audio. The mode asks `due()` once `filler_after_ms` have passed: only if the
gap is still open, and no earlier agent audio is still playing at the caller's, does the
filler play (once per gap), as `media` frames and one mark so its end is known. It stops
with a Twilio `clear` when the new reply's audio comes (`agent_audio`), when the caller
barges in, or when reconnecting fails (`give_up`). It is not agent speech: no response,
no history, no turn.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from voiceagent.protocols import twilio_media as tm

FILLER_MARK: Final = "reconnect-filler:1"
FRAME_BYTES: Final = 800  # 100 ms of µ-law per `media` frame
RETRY_S: Final = 0.1
"""How soon `due` is asked again while earlier agent audio still plays."""


class FillerState(Enum):
    IDLE = "idle"  # no gap, or the gap needs no filler (any more)
    WAITING = "waiting"  # a gap: the filler plays if it is still open when due
    PLAYING = "playing"  # sent to Twilio, not yet played out nor cleared


class FillerStep(Enum):
    """What the mode does when the filler is due."""

    PLAY = "play"  # send `frames()` now
    LATER = "later"  # ask again in RETRY_S
    NONE = "none"  # nothing to play in this gap


class GapFiller:
    """One call's reconnect filler (see the module docstring)."""

    IDLE: Final = FillerState.IDLE  # the hot path's check: `filler.state is not filler.IDLE`

    def __init__(self, clip: bytes, stream_sid: str) -> None:
        self.clip = clip
        self.stream_sid = stream_sid
        self.state = FillerState.IDLE
        self._reply_owed = False
        self.played_in_gap = False

    def gap_started(self, reply_owed: bool) -> None:
        """The session dropped; `reply_owed`: it cut a reply the new session must give."""
        self.state = FillerState.WAITING
        self._reply_owed = reply_owed
        self.played_in_gap = False

    def reconnected(self) -> None:
        """The new session is up: with no reply owed the gap is over."""
        if self.state is FillerState.WAITING and not self._reply_owed:
            self.state = FillerState.IDLE

    def due(self, agent_playing: bool) -> FillerStep:
        """`filler_after_ms` after the drop (or a retry)."""
        if self.state is not FillerState.WAITING:
            return FillerStep.NONE
        if agent_playing:  # the caller hears the agent, not a gap; the filler would queue
            return FillerStep.LATER
        self.state = FillerState.PLAYING
        self.played_in_gap = True
        return FillerStep.PLAY

    def frames(self) -> list[str]:
        """The filler's `media` frames and its closing mark (`due` said PLAY)."""
        sid, clip = self.stream_sid, self.clip
        media = [tm.dump_media(sid, clip[i : i + FRAME_BYTES])
                 for i in range(0, len(clip), FRAME_BYTES)]  # fmt: skip
        return [*media, tm.dump_mark(sid, FILLER_MARK)]

    @property
    def playing(self) -> bool:
        return self.state is FillerState.PLAYING

    def agent_audio(self) -> list[str]:
        """The new session's audio starts: the gap is over; a filler playing is cleared."""
        return self._stop()

    def barge_in(self) -> list[str]:
        """The caller spoke: no filler now; one playing is cleared."""
        return self._stop()

    def give_up(self) -> list[str]:
        """No new session could be opened: a filler playing must not run into the failover."""
        return self._stop()

    def mark_echoed(self, name: str) -> bool:
        """True for the filler's own mark (it played out; a flush echo proves nothing new)."""
        if name != FILLER_MARK:
            return False
        if self.state is FillerState.PLAYING:
            self.state = FillerState.IDLE
        return True

    def _stop(self) -> list[str]:
        was_playing = self.state is FillerState.PLAYING
        self.state = FillerState.IDLE
        return [tm.dump_clear(self.stream_sid)] if was_playing else []
