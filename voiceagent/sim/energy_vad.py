"""An energy VAD for the fake Inworld: 20 ms frames above a level start speech, a hangover of
quiet frames ends it. Pure: bytes in, events out, no clock (positions are audio milliseconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from voiceagent.audio import ulaw_level_dbfs

FRAME_MS = 20


@dataclass(frozen=True, slots=True)
class VadEvent:
    """Speech started or stopped at ``ms`` (audio time since the session's first byte)."""

    kind: Literal["started", "stopped"]
    ms: int


def pcm16_level_dbfs(frame: bytes) -> float:
    """RMS level of PCM16 LE in dBFS (for sessions left in the default PCM format)."""
    samples = np.frombuffer(frame[: len(frame) // 2 * 2], dtype="<i2").astype(np.float64)
    if samples.size == 0:
        return -math.inf
    mean_square = float(np.mean(samples * samples))
    return -math.inf if mean_square <= 0 else 10 * math.log10(mean_square) - 20 * math.log10(32768)


class EnergyVad:
    """Threshold + minimum speech + hangover, over µ-law (8 kHz) or PCM16 at ``rate``."""

    def __init__(
        self,
        threshold_dbfs: float = -40.0,
        start_ms: int = 60,
        hangover_ms: int = 400,
        *,
        ulaw: bool = True,
        rate: int = 8000,
    ) -> None:
        self.threshold = threshold_dbfs
        self.start_ms = start_ms
        self.hangover_ms = hangover_ms
        self.ulaw = ulaw
        self.frame_bytes = rate * FRAME_MS // 1000 * (1 if ulaw else 2)
        self.position_ms = 0
        self.speaking = False
        self._voiced_ms = 0
        self._quiet_ms = 0
        self._buffer = bytearray()

    def feed(self, audio: bytes) -> list[VadEvent]:
        """Consume audio; return the speech boundaries it completed."""
        self._buffer += audio
        events: list[VadEvent] = []
        size = self.frame_bytes
        level_of = ulaw_level_dbfs if self.ulaw else pcm16_level_dbfs
        while len(self._buffer) >= size:
            frame = bytes(self._buffer[:size])
            del self._buffer[:size]
            self.position_ms += FRAME_MS
            event = self._step(level_of(frame) > self.threshold)
            if event is not None:
                events.append(event)
        return events

    def _step(self, voiced: bool) -> VadEvent | None:
        if voiced:
            self._quiet_ms = 0
            self._voiced_ms += FRAME_MS
            if not self.speaking and self._voiced_ms >= self.start_ms:
                self.speaking = True
                return VadEvent("started", self.position_ms - self._voiced_ms)
            return None
        if not self.speaking:
            self._voiced_ms = 0
            return None
        self._quiet_ms += FRAME_MS
        if self._quiet_ms >= self.hangover_ms:
            self.speaking = False
            self._voiced_ms = 0
            return VadEvent("stopped", self.position_ms - self._quiet_ms)
        return None
