"""WAV framing: RIFF/WAVE headers for µ-law or PCM16 audio, and a lenient parser.

``wav_header`` (also for a WAV streamed before its length is known), ``wrap_wav`` and
``parse_wav`` returning a ``WavInfo``; pure functions of bytes. Import them from
``voiceagent.audio``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from voiceagent.errors import ProtocolError


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
