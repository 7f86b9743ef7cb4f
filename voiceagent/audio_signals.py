"""Synthetic test signals: µ-law silence and deterministic speech-like audio.

What the fakes and tests feed in place of a caller or a TTS voice: ``silence_ulaw``,
``speech_like_pcm16`` and ``speech_like_ulaw`` (a voiced, syllabic signal at about
-20 dBFS). Import them from ``voiceagent.audio``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from voiceagent.audio_codec import (
    _FULL_SCALE,
    ROUTER_RATE,
    ULAW_RATE,
    ULAW_SILENCE,
    _to_pcm16,
    ulaw_bytes,
    ulaw_encode,
)


def _speech_like(ms: float, rate: int, seed: int) -> npt.NDArray[np.float64]:
    """A voiced, syllabic signal as floats in int16 units, about -20 dBFS RMS on average.

    Five decaying harmonics of a gliding pitch (120-220 Hz), amplitude-modulated at a
    ~4 Hz syllable rate whose troughs stay about 10 dB below the mean, plus faint noise.
    """
    rng = np.random.default_rng(seed)
    pitch = rng.uniform(120.0, 220.0)
    syllable_hz = rng.uniform(3.5, 4.5)
    phases = rng.uniform(0.0, 2 * np.pi, size=6)
    t = np.arange(round(ms * rate / 1000)) / rate
    f0 = pitch * (1.0 + 0.06 * np.sin(2 * np.pi * 0.7 * t + phases[0]))
    voice_phase = 2 * np.pi * np.cumsum(f0) / rate
    amplitudes = np.array([1.0, 0.6, 0.4, 0.25, 0.15])
    voiced = sum(
        a * np.sin(k * voice_phase + p)
        for k, (a, p) in enumerate(zip(amplitudes, phases[1:], strict=True), start=1)
    )
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * syllable_hz * t)
    # Long-run RMS of envelope * voiced: sqrt(E[env^2] * sum(a^2) / 2).
    unit_rms = math.sqrt((0.6**2 + 0.4**2 / 2) * float(np.sum(amplitudes**2)) / 2)
    target_rms = _FULL_SCALE * 10 ** (-20 / 20)
    noise = rng.normal(0.0, 0.01, size=t.size)
    return np.asarray((envelope * voiced + noise) * (target_rms / unit_rms), dtype=np.float64)


def silence_ulaw(ms: float) -> bytes:
    """``ms`` milliseconds of 8 kHz µ-law digital silence."""
    return bytes([ULAW_SILENCE]) * ulaw_bytes(ms)


def speech_like_pcm16(ms: float, rate: int = ROUTER_RATE, seed: int = 0) -> bytes:
    """``ms`` milliseconds of deterministic speech-like PCM16 LE mono at ``rate`` Hz."""
    return _to_pcm16(_speech_like(ms, rate, seed))


def speech_like_ulaw(ms: float, seed: int = 0) -> bytes:
    """``ms`` milliseconds of deterministic speech-like 8 kHz µ-law (about -20 dBFS)."""
    return ulaw_encode(speech_like_pcm16(ms, ULAW_RATE, seed))
