"""Unit tests for the pure audio helpers: µ-law, levels, resampling, WAV, test signals."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from voiceagent.audio import (
    ROUTER_RATE,
    ULAW_RATE,
    ULAW_SILENCE,
    PcmToUlaw,
    WavFormat,
    WavInfo,
    parse_wav,
    pcm16_ms,
    resample_pcm16,
    silence_ulaw,
    speech_like_pcm16,
    speech_like_ulaw,
    ulaw_bytes,
    ulaw_decode,
    ulaw_encode,
    ulaw_level_dbfs,
    ulaw_ms,
    wav_header,
    wrap_wav,
)
from voiceagent.errors import ProtocolError


def reference_lin2ulaw(sample: int) -> int:
    """G.711 µ-law encoding of one int16 sample, written out as in the ITU/Sun C code."""
    value = sample >> 2
    mask = 0xFF
    if value < 0:
        value, mask = -value, 0x7F
    value = min(value, 8159) + 33
    for segment, end in enumerate((0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)):
        if value <= end:
            return ((segment << 4) | ((value >> (segment + 1)) & 0x0F)) ^ mask
    return 0x7F ^ mask


def reference_ulaw2lin(code: int) -> int:
    """G.711 µ-law decoding of one byte, written out as in the ITU/Sun C code."""
    code = ~code & 0xFF
    magnitude = (((code & 0x0F) << 3) + 0x84) << ((code & 0x70) >> 4)
    return 0x84 - magnitude if code & 0x80 else magnitude - 0x84


def pcm(samples: np.ndarray | list[int]) -> bytes:
    return np.asarray(samples, dtype="<i2").tobytes()


def samples_of(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float64)


def tone(freq: float, rate: int, ms: float, amplitude: float = 10000.0) -> bytes:
    t = np.arange(round(rate * ms / 1000)) / rate
    return pcm(np.rint(amplitude * np.sin(2 * np.pi * freq * t)))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


def test_ulaw_encode_known_values() -> None:
    """Zero, ±1, full scale and a few G.711 table points encode to their standard bytes."""
    inputs = [0, 1, -1, 32767, -32768, 32124, -32124, 1000, -1000, 8, -8, 16000]
    expected = [0xFF, 0xFF, 0x7E, 0x80, 0x00, 0x80, 0x00, 0xCE, 0x4E, 0xFE, 0x7E, 0x90]
    assert list(ulaw_encode(pcm(inputs))) == expected


def test_ulaw_encode_matches_reference_for_every_sample() -> None:
    """Encoding every int16 value agrees with a straightforward G.711 implementation."""
    every = np.arange(-32768, 32768)
    expected = bytes(reference_lin2ulaw(int(s)) for s in every)
    assert ulaw_encode(pcm(every)) == expected


def test_ulaw_decode_table_known_values() -> None:
    """The decode table gives G.711 values: 0xFF/0x7F are 0, 0x80/0x00 are ±32124."""
    decoded = samples_of(ulaw_decode(bytes([0xFF, 0x7F, 0x80, 0x00, 0xFE, 0x7E, 0xCE, 0x4E])))
    assert decoded.tolist() == [0, 0, 32124, -32124, 8, -8, 988, -988]
    every = bytes(range(256))
    assert samples_of(ulaw_decode(every)).tolist() == [reference_ulaw2lin(c) for c in every]


def test_ulaw_round_trip_error_is_bounded() -> None:
    """Decoding an encoded sample stays within half a µ-law step (about 3% plus 8 LSB)."""
    every = np.arange(-32124, 32125)
    back = samples_of(ulaw_decode(ulaw_encode(pcm(every))))
    assert np.all(np.abs(back - every) <= np.abs(every) / 32 + 8)


def test_ulaw_round_trip_of_decoded_bytes_is_identity() -> None:
    """Every µ-law byte except negative zero (0x7F) survives decode then encode unchanged."""
    codes = bytes(c for c in range(256) if c != 0x7F)
    assert ulaw_encode(ulaw_decode(codes)) == codes


def test_ulaw_encode_rejects_odd_length() -> None:
    """PCM16 input with a dangling byte is a caller error."""
    with pytest.raises(ValueError, match="odd"):
        ulaw_encode(b"\x00\x00\x00")


def test_durations_and_sizes() -> None:
    """Duration helpers convert between bytes and milliseconds for µ-law and PCM16."""
    assert ULAW_RATE == 8000 and ROUTER_RATE == 48000 and ULAW_SILENCE == 0xFF
    assert ulaw_ms(160) == 20.0
    assert ulaw_bytes(20) == 160
    assert pcm16_ms(1920, 48000) == 20.0
    assert silence_ulaw(20) == b"\xff" * 160


def test_level_of_silence_and_speech_like() -> None:
    """Silence reads -inf dBFS while nearly every 20 ms speech-like frame beats -45 dBFS."""
    assert ulaw_level_dbfs(silence_ulaw(20)) == -math.inf
    assert ulaw_level_dbfs(b"") == -math.inf
    speech = speech_like_ulaw(5000, seed=7)
    levels = [ulaw_level_dbfs(speech[i : i + 160]) for i in range(0, len(speech), 160)]
    assert sum(level > -45 for level in levels) >= 0.98 * len(levels)
    overall = ulaw_level_dbfs(speech)
    assert -23 < overall < -17


def test_level_of_full_scale_sine() -> None:
    """A near full-scale sine reads about -3 dBFS."""
    frame = ulaw_encode(tone(1000, ULAW_RATE, 20, amplitude=32000))
    assert ulaw_level_dbfs(frame) == pytest.approx(-3.2, abs=0.3)


def test_resample_keeps_in_band_tone() -> None:
    """A 1 kHz tone resampled from 48 kHz to 8 kHz keeps its amplitude within 1 dB."""
    out = samples_of(resample_pcm16(tone(1000, 48000, 500), 48000, 8000))
    assert len(out) == 4000
    steady = out[400:-400]
    gain_db = 20 * math.log10(rms(steady) / (10000 / math.sqrt(2)))
    assert abs(gain_db) < 1


def test_resample_filters_out_of_band_tone() -> None:
    """A 10 kHz tone resampled from 48 kHz to 8 kHz is attenuated by more than 40 dB."""
    out = samples_of(resample_pcm16(tone(10000, 48000, 500), 48000, 8000))
    steady = out[400:-400]
    assert 20 * math.log10(max(rms(steady), 1e-9) / (10000 / math.sqrt(2))) < -40


def test_resample_same_rate_and_upsampling() -> None:
    """Same-rate resampling is the identity and 8 to 48 kHz gives six times the samples."""
    data = speech_like_pcm16(100, rate=8000)
    assert resample_pcm16(data, 8000, 8000) == data
    assert len(resample_pcm16(data, 8000, 48000)) == 6 * len(data)


def test_pcm_to_ulaw_streaming_matches_one_shot() -> None:
    """Feeding odd-sized chunks gives the same length (±2) and content as one-shot conversion."""
    data = speech_like_pcm16(2000, seed=2)
    one_shot = ulaw_encode(resample_pcm16(data, ROUTER_RATE, ULAW_RATE))
    converter = PcmToUlaw()
    parts = [converter.feed(data[i : i + 777]) for i in range(0, len(data), 777)]
    streamed = b"".join(parts) + converter.flush()
    expected_len = len(data) // 2 * ULAW_RATE / ROUTER_RATE
    assert abs(len(streamed) - expected_len) <= 2
    assert abs(len(streamed) - len(one_shot)) <= 2
    a, b = samples_of(ulaw_decode(streamed)), samples_of(ulaw_decode(one_shot))
    n = min(len(a), len(b))
    assert rms(a[:n] - b[:n]) < 0.02 * rms(b[:n])


def test_pcm_to_ulaw_flush_resets() -> None:
    """After flush, the converter produces the same output again for the same input."""
    data = speech_like_pcm16(300, seed=5)
    converter = PcmToUlaw()
    first = converter.feed(data) + converter.flush()
    second = converter.feed(data) + converter.flush()
    assert first == second
    assert len(first) == 2400


def test_pcm_to_ulaw_at_8k_only_encodes() -> None:
    """A converter whose source is already 8 kHz just µ-law encodes, byte for byte."""
    data = speech_like_pcm16(100, rate=ULAW_RATE)
    converter = PcmToUlaw(src_rate=ULAW_RATE)
    assert converter.feed(data[:101]) + converter.feed(data[101:]) + converter.flush() == (
        ulaw_encode(data)
    )


def test_wav_header_layout() -> None:
    """The header is 44 canonical bytes with 8-bit µ-law (format 7) by default."""
    header = wav_header(160, 8000)
    assert len(header) == 44
    fields = struct.unpack("<4sI4s4sIHHIIHH4sI", header)
    assert fields == (b"RIFF", 196, b"WAVE", b"fmt ", 16, 7, 1, 8000, 8000, 1, 8, b"data", 160)


def test_wav_round_trip_ulaw_8k() -> None:
    """A wrapped 8 kHz µ-law clip parses back to the same format and bytes."""
    data = speech_like_ulaw(250)
    info = parse_wav(wrap_wav(data, ULAW_RATE))
    assert info == WavInfo(WavFormat.ULAW, 8000, 1, 8, data)
    assert info.duration_ms == 250


def test_wav_round_trip_pcm_48k() -> None:
    """A wrapped 48 kHz PCM16 clip parses back to the same format and bytes."""
    data = speech_like_pcm16(100)
    blob = wrap_wav(data, ROUTER_RATE, fmt=WavFormat.PCM)
    assert struct.unpack_from("<IHH", blob, 28) == (96000, 2, 16)
    info = parse_wav(blob)
    assert (info.fmt, info.sample_rate, info.channels, info.bits_per_sample) == (1, 48000, 1, 16)
    assert info.data == data
    assert info.duration_ms == 100


def test_wav_odd_length_is_padded() -> None:
    """An odd-length data chunk is padded on disk but parses back to its true length."""
    blob = wrap_wav(b"\x01\x02\x03", ULAW_RATE)
    assert len(blob) == 48
    assert parse_wav(blob).data == b"\x01\x02\x03"


def test_wav_with_extra_chunks() -> None:
    """Unknown chunks such as LIST and fact before the data are skipped."""
    data = b"\x10\x20\x30\x40"
    canonical = wrap_wav(data, ULAW_RATE)
    listing = b"LIST" + struct.pack("<I", 5) + b"INFOx\x00"
    fact = b"fact" + struct.pack("<II", 4, len(data))
    blob = canonical[:36] + listing + fact + canonical[36:]
    assert parse_wav(blob) == WavInfo(7, 8000, 1, 8, data)


def test_wav_unknown_length_takes_rest_of_blob() -> None:
    """A streamed WAV with 0xFFFFFFFF sizes yields all bytes after the header."""
    header = wav_header(None, ULAW_RATE)
    assert struct.unpack_from("<I", header, 4)[0] == 0xFFFFFFFF
    assert struct.unpack_from("<I", header, 40)[0] == 0xFFFFFFFF
    data = speech_like_ulaw(60)
    assert parse_wav(header + data).data == data


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "truncated"),
        (b"RIFF\x00\x00", "truncated"),
        (b"RIFX" + b"\x00" * 40, "not a RIFF/WAVE"),
        (b"RIFF\x00\x00\x00\x00AVI " + b"\x00" * 32, "not a RIFF/WAVE"),
        (wrap_wav(b"\xff" * 100, 8000)[:-10], "data chunk is truncated"),
        (wrap_wav(b"\xff" * 100, 8000)[:30], "fmt ' chunk is truncated"),
        (wrap_wav(b"", 8000)[:36], "no data chunk"),
        (b"RIFF\x04\x00\x00\x00WAVEdata\x00\x00\x00\x00", "before any fmt"),
        (b"RIFF\x04\x00\x00\x00WAVE", "no fmt chunk"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt \x04\x00\x00\x00\x07\x00\x01\x00", "expected at least"),
        (wav_header(0, 8000, channels=0), "0 channels"),
        (wav_header(0, 0), "sample rate of 0"),
    ],
)
def test_parse_wav_errors(blob: bytes, message: str) -> None:
    """Malformed WAV input raises ProtocolError saying what is wrong."""
    with pytest.raises(ProtocolError, match=message):
        parse_wav(blob)


def test_speech_like_is_deterministic_by_seed() -> None:
    """The same seed gives the same signal and a different seed gives a different one."""
    assert speech_like_ulaw(200, seed=1) == speech_like_ulaw(200, seed=1)
    assert speech_like_ulaw(200, seed=1) != speech_like_ulaw(200, seed=2)
    assert speech_like_pcm16(200, seed=1) == speech_like_pcm16(200, seed=1)
    assert len(speech_like_pcm16(200, rate=16000)) == 6400
    assert len(speech_like_ulaw(200)) == 1600


def test_speech_like_pcm16_is_voiced_and_about_minus_20_dbfs() -> None:
    """The PCM signal averages about -20 dBFS with its energy in the voice band."""
    x = samples_of(speech_like_pcm16(4000, seed=4))
    assert 20 * math.log10(rms(x) / 32768) == pytest.approx(-20, abs=1.5)
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / ROUTER_RATE)
    voice_band = spectrum[(freqs >= 100) & (freqs <= 1200)].sum()
    assert voice_band > 0.99 * spectrum.sum()
