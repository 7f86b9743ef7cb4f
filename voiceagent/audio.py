"""Pure audio helpers: G.711 µ-law, PCM16 resampling, WAV framing and test signals.

Twilio carries G.711 µ-law at 8 kHz; the Inworld Router returns PCM16 LE at 48 kHz mono.
The one module to import: it re-exports the µ-law codec and resampling (``audio_codec``),
WAV framing (``audio_wav``) and synthetic test signals (``audio_signals``). Everything is a
pure function of bytes (or a small streaming object): no I/O, no asyncio.
"""

from __future__ import annotations

from voiceagent.audio_codec import (
    ROUTER_RATE,
    ULAW_RATE,
    ULAW_SILENCE,
    PcmToUlaw,
    pcm16_ms,
    resample_pcm16,
    ulaw_bytes,
    ulaw_decode,
    ulaw_encode,
    ulaw_level_dbfs,
    ulaw_ms,
)
from voiceagent.audio_signals import silence_ulaw, speech_like_pcm16, speech_like_ulaw
from voiceagent.audio_wav import WavFormat, WavInfo, parse_wav, wav_header, wrap_wav

__all__ = [
    "ROUTER_RATE",
    "ULAW_RATE",
    "ULAW_SILENCE",
    "PcmToUlaw",
    "WavFormat",
    "WavInfo",
    "parse_wav",
    "pcm16_ms",
    "resample_pcm16",
    "silence_ulaw",
    "speech_like_pcm16",
    "speech_like_ulaw",
    "ulaw_bytes",
    "ulaw_decode",
    "ulaw_encode",
    "ulaw_level_dbfs",
    "ulaw_ms",
    "wav_header",
    "wrap_wav",
]
