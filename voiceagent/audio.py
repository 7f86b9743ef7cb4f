"""Pure audio helpers: G.711 µ-law, PCM16 resampling, WAV framing and test signals.

Twilio carries G.711 µ-law at 8 kHz; the Inworld Router returns PCM16 LE at 48 kHz mono.
Everything here is a pure function of bytes (or a small streaming object): no I/O, no
asyncio. Work is vectorised with numpy; resampling is band-limited with soxr so that
energy above the new Nyquist frequency is filtered out instead of aliasing into the band.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt
import soxr

from voiceagent.errors import ProtocolError

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
        self._stream = self._new_stream()
        return tail


class WavFormat(IntEnum):
    """WAVE ``fmt`` chunk format codes this project writes."""

    PCM = 1
    ULAW = 7


_UNKNOWN_SIZE = 0xFFFFFFFF
_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")


def _bits_per_sample(fmt: WavFormat) -> int:
    return 8 if fmt == WavFormat.ULAW else 16


def wav_header(
    data_len: int | None, sample_rate: int, channels: int = 1, fmt: WavFormat = WavFormat.ULAW
) -> bytes:
    """A canonical 44-byte RIFF/WAVE header for ``data_len`` bytes of audio.

    The RIFF size counts the pad byte that an odd ``data_len`` needs (see ``wrap_wav``).
    ``data_len=None`` writes 0xFFFFFFFF as both the RIFF and data sizes, the convention
    for a WAV streamed before its length is known.
    """
    if data_len is None:
        riff_size = size = _UNKNOWN_SIZE
    elif 0 <= data_len <= _UNKNOWN_SIZE - 37:
        riff_size, size = 36 + data_len + data_len % 2, data_len
    else:
        raise ValueError(f"data_len {data_len} does not fit a WAV file")
    bits = _bits_per_sample(fmt)
    block_align = channels * bits // 8
    return _HEADER.pack(
        b"RIFF", riff_size, b"WAVE", b"fmt ", 16, int(fmt), channels, sample_rate,
        sample_rate * block_align, block_align, bits, b"data", size,
    )  # fmt: skip


def wrap_wav(
    data: bytes, sample_rate: int, channels: int = 1, fmt: WavFormat = WavFormat.ULAW
) -> bytes:
    """A complete WAV file holding ``data`` (padded to an even length, as RIFF requires)."""
    pad = b"\x00" if len(data) % 2 else b""
    return wav_header(len(data), sample_rate, channels, fmt) + data + pad


@dataclass(frozen=True)
class WavInfo:
    """The format and sample data of a parsed WAV file."""

    fmt: int
    sample_rate: int
    channels: int
    bits_per_sample: int
    data: bytes

    @property
    def duration_ms(self) -> float:
        """Length of ``data`` in milliseconds."""
        frame_bytes = self.channels * self.bits_per_sample / 8
        return len(self.data) / frame_bytes / self.sample_rate * 1000


_CHUNK = struct.Struct("<4sI")
_FMT = struct.Struct("<HHIIHH")


def _parse_fmt(body: bytes) -> tuple[int, int, int, int]:
    if len(body) < _FMT.size:
        raise ProtocolError(f"WAV fmt chunk is {len(body)} bytes, expected at least 16")
    fmt, channels, rate, _byte_rate, _align, bits = _FMT.unpack_from(body)
    if channels < 1:
        raise ProtocolError("WAV fmt chunk declares 0 channels")
    if rate < 1:
        raise ProtocolError("WAV fmt chunk declares a sample rate of 0")
    if bits < 1:
        raise ProtocolError("WAV fmt chunk declares 0 bits per sample")
    return fmt, rate, channels, bits


def parse_wav(blob: bytes) -> WavInfo:
    """Parse a RIFF/WAVE file, skipping chunks other than ``fmt `` and ``data``.

    A data size of 0xFFFFFFFF (streamed WAV) takes the rest of the blob. Anything
    malformed raises ProtocolError saying what is wrong.
    """
    if len(blob) < 12:
        raise ProtocolError(f"WAV is truncated: {len(blob)} bytes, no RIFF header")
    if blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise ProtocolError(f"not a RIFF/WAVE file (starts with {blob[:12]!r})")
    fmt: tuple[int, int, int, int] | None = None
    offset = 12
    while offset + _CHUNK.size <= len(blob):
        chunk_id, size = _CHUNK.unpack_from(blob, offset)
        start = offset + _CHUNK.size
        if chunk_id == b"data":
            if fmt is None:
                raise ProtocolError("WAV data chunk comes before any fmt chunk")
            end = len(blob) if size == _UNKNOWN_SIZE else start + size
            if end > len(blob):
                raise ProtocolError(
                    f"WAV data chunk is truncated: declares {size} bytes, has {len(blob) - start}"
                )
            return WavInfo(*fmt, data=blob[start:end])
        if start + size > len(blob):
            raise ProtocolError(f"WAV {chunk_id!r} chunk is truncated")
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(blob[start : start + size])
        offset = start + size + size % 2
    missing = "data" if fmt is not None else "fmt"
    raise ProtocolError(f"WAV has no {missing} chunk")


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
