"""G.711 µ-law codec, PCM16 resampling, durations and levels.

Twilio carries G.711 µ-law at 8 kHz; the Inworld Router returns PCM16 LE at 48 kHz mono.
Pure functions of bytes plus the streaming ``PcmToUlaw``: no I/O, no asyncio. Work is
vectorised with numpy; resampling is band-limited with soxr so that energy above the new
Nyquist frequency is filtered out instead of aliasing into the band. Import them from
``voiceagent.audio``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import soxr

ULAW_RATE = 8000
"""Sample rate of telephone µ-law audio (one byte per sample, so 8 bytes per ms)."""
ULAW_SILENCE = 0xFF
"""The µ-law byte that decodes to linear 0."""
ROUTER_RATE = 48000
"""Sample rate of the PCM16 mono audio the Inworld Router API returns."""

_RESAMPLE_QUALITY = "HQ"
_LE_I16 = np.dtype("<i2")
_LE_U16 = np.dtype("<u2")
_FULL_SCALE = 32768.0
_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159  # in 14-bit units, as in the ITU / Sun reference code
_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def _build_encode_table() -> npt.NDArray[np.uint8]:
    """Map every int16 sample (indexed by its uint16 bit pattern) to its µ-law byte."""
    linear = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32) >> 2
    mask = np.where(linear < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(linear), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    segment = np.searchsorted(_ULAW_SEG_END, magnitude, side="left")
    mantissa = (magnitude >> (np.minimum(segment, 7) + 1)) & 0x0F
    code = np.where(segment >= 8, 0x7F, (segment << 4) | mantissa)
    return (code ^ mask).astype(np.uint8)


def _build_decode_table() -> npt.NDArray[np.int16]:
    """Map every µ-law byte to its linear int16 value (ITU G.711 expansion)."""
    inverted = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((inverted & 0x0F) << 3) + _ULAW_BIAS) << ((inverted & 0x70) >> 4)
    linear = np.where(inverted & 0x80, _ULAW_BIAS - magnitude, magnitude - _ULAW_BIAS)
    return linear.astype(_LE_I16)


_ULAW_ENCODE = _build_encode_table()
_ULAW_DECODE = _build_decode_table()
_ULAW_SQUARED = _ULAW_DECODE.astype(np.float64) ** 2


def _pcm16_samples(pcm: bytes) -> npt.NDArray[np.int16]:
    if len(pcm) % 2:
        raise ValueError(f"PCM16 data has an odd number of bytes ({len(pcm)})")
    return np.frombuffer(pcm, dtype=_LE_I16)


def ulaw_encode(pcm16le: bytes) -> bytes:
    """Encode PCM16 LE samples to G.711 µ-law, bit-exact with ``audioop.lin2ulaw``."""
    if len(pcm16le) % 2:
        raise ValueError(f"PCM16 data has an odd number of bytes ({len(pcm16le)})")
    return _ULAW_ENCODE[np.frombuffer(pcm16le, dtype=_LE_U16)].tobytes()


def ulaw_decode(ulaw: bytes) -> bytes:
    """Decode G.711 µ-law to PCM16 LE, bit-exact with ``audioop.ulaw2lin``."""
    return _ULAW_DECODE[np.frombuffer(ulaw, dtype=np.uint8)].tobytes()


def ulaw_ms(n_bytes: int) -> float:
    """Duration in milliseconds of ``n_bytes`` of 8 kHz µ-law."""
    return n_bytes / (ULAW_RATE / 1000)


def pcm16_ms(n_bytes: int, rate: int) -> float:
    """Duration in milliseconds of ``n_bytes`` of mono PCM16 at ``rate`` Hz."""
    return n_bytes / 2 / rate * 1000


def ulaw_bytes(ms: float) -> int:
    """Number of 8 kHz µ-law bytes (samples) in ``ms`` milliseconds, rounded."""
    return round(ms * ULAW_RATE / 1000)


def ulaw_level_dbfs(frame: bytes) -> float:
    """RMS level of a µ-law frame in dBFS (full scale 32768); ``-inf`` for digital silence.

    A full-scale sine reads about -3 dBFS. Cheap enough to run on every 20 ms frame.
    """
    if not frame:
        return -math.inf
    mean_square = float(_ULAW_SQUARED[np.frombuffer(frame, dtype=np.uint8)].mean())
    if mean_square <= 0.0:
        return -math.inf
    return 10.0 * math.log10(mean_square) - 20.0 * math.log10(_FULL_SCALE)


def _to_pcm16(samples: npt.NDArray[np.floating[Any]]) -> bytes:
    """Round and saturate float samples (in int16 units) to PCM16 LE bytes."""
    clipped: npt.NDArray[np.floating[Any]] = np.clip(np.rint(samples), -32768, 32767)
    return clipped.astype(_LE_I16).tobytes()


def resample_pcm16(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """Resample mono PCM16 LE from ``src_rate`` to ``dst_rate`` with a band-limiting filter."""
    samples = _pcm16_samples(pcm)
    if src_rate == dst_rate or samples.size == 0:
        return bytes(pcm)
    out = soxr.resample(samples.astype(np.float32), src_rate, dst_rate, _RESAMPLE_QUALITY)
    return _to_pcm16(np.asarray(out, dtype=np.float32))


class PcmToUlaw:
    """Stream PCM16 LE mono at ``src_rate`` into 8 kHz µ-law, chunk by chunk.

    The resampler keeps filter state between chunks, so chunk boundaries are inaudible.
    Chunks may split a sample: a dangling odd byte is carried to the next ``feed``.
    The filter delays its output, so early feeds may return less than expected (or
    nothing); ``flush`` returns the tail and resets the converter for reuse.
    """

    def __init__(self, src_rate: int = ROUTER_RATE) -> None:
        self.src_rate = src_rate
        self._carry = b""
        self._stream = self._new_stream()

    def _new_stream(self) -> soxr.ResampleStream:
        return soxr.ResampleStream(
            self.src_rate, ULAW_RATE, 1, dtype="float32", quality=_RESAMPLE_QUALITY
        )

    def _convert(self, pcm: bytes, *, last: bool) -> bytes:
        if self.src_rate == ULAW_RATE:
            return ulaw_encode(pcm)
        samples = np.frombuffer(pcm, dtype=_LE_I16).astype(np.float32)
        out = np.asarray(self._stream.resample_chunk(samples, last=last), dtype=np.float32)
        return ulaw_encode(_to_pcm16(out))

    def feed(self, pcm: bytes) -> bytes:
        """Convert the next chunk of PCM16 LE; returns the µ-law produced so far."""
        data = self._carry + pcm
        whole = len(data) - len(data) % 2
        self._carry = data[whole:]
        return self._convert(data[:whole], last=False)

    def flush(self) -> bytes:
        """Drain the filter tail at the end of an utterance and reset the converter.

        A dangling half sample left by an odd total length is dropped.
        """
        tail = self._convert(b"", last=True)
        self._carry = b""
        self._stream.clear()  # as good as a new stream, without building the filter again
        return tail
