"""Unit tests of the Router SSE → sentence segment state machine and the clip encoder."""

from __future__ import annotations

from voiceagent.audio import ULAW_RATE, WavFormat, parse_wav, speech_like_pcm16
from voiceagent.session.segments import (
    ClipEncoder,
    SegmentAudio,
    SegmentClosed,
    Segmenter,
    SegmentOpened,
)

PCM_100MS = b"\x01\x00" * 4800  # 100 ms of 48 kHz PCM16


def test_transcript_starts_segment_and_first_audio_opens_it() -> None:
    """A transcript announces a segment; its first audio opens it, later audio just adds."""
    seg = Segmenter()
    assert seg.feed("Hello. ", b"") == []
    events = seg.feed(None, PCM_100MS)
    assert events == [SegmentOpened(0), SegmentAudio(0, PCM_100MS)]
    assert seg.feed(None, PCM_100MS) == [SegmentAudio(0, PCM_100MS)]


def test_next_transcript_closes_segment_with_its_text_and_duration() -> None:
    """A transcript after audio closes the open segment (text, source duration) and starts one."""
    seg = Segmenter()
    seg.feed("One. ", PCM_100MS)
    seg.feed(None, PCM_100MS)
    events = seg.feed("Two. ", b"")
    assert events == [SegmentClosed(0, "One. ", 200.0)]
    assert seg.feed(None, PCM_100MS)[0] == SegmentOpened(1)
    assert seg.finish() == [SegmentClosed(1, "Two. ", 100.0)]


def test_transcripts_before_any_audio_merge_into_first_segment() -> None:
    """Several transcripts before the first audio are one segment, as in the reference client."""
    seg = Segmenter()
    seg.feed("Hi! ", b"")
    seg.feed("I am here. ", b"")
    seg.feed(None, PCM_100MS)
    assert seg.finish() == [SegmentClosed(0, "Hi! I am here. ", 100.0)]


def test_finish_without_audio_closes_nothing() -> None:
    """The end of a stream with no audio in the open segment yields no segment."""
    seg = Segmenter()
    seg.feed("Only text. ", b"")
    assert seg.finish() == []
    assert not seg.open


def test_clip_encoder_makes_8khz_ulaw_wav_of_the_source_duration() -> None:
    """Streaming 48 kHz PCM through the encoder gives an 8 kHz µ-law WAV of the same length."""
    enc = ClipEncoder("ulaw_wav")
    pcm = speech_like_pcm16(730)
    data = b"".join(enc.feed(pcm[i : i + 9600]) for i in range(0, len(pcm), 9600))
    data += enc.finish()
    info = parse_wav(enc.wav(data))
    assert info.fmt == WavFormat.ULAW and info.sample_rate == ULAW_RATE
    assert info.channels == 1 and info.bits_per_sample == 8
    assert abs(info.duration_ms - 730) < 2 and abs(enc.duration_ms - info.duration_ms) < 1


def test_clip_encoder_pcm_format_gives_16_bit_8khz_wav() -> None:
    """`pcm_wav` clips are 16-bit PCM at 8 kHz of the source duration."""
    enc = ClipEncoder("pcm_wav")
    enc.feed(speech_like_pcm16(500))
    info = parse_wav(enc.wav(enc.finish()))
    assert info.fmt == WavFormat.PCM and info.sample_rate == ULAW_RATE
    assert info.bits_per_sample == 16 and abs(info.duration_ms - 500) < 2


def test_unknown_length_header_parses_as_streamed_wav() -> None:
    """The header for a WAV streamed with no length lets a reader take the rest as data."""
    enc = ClipEncoder("ulaw_wav")
    data = enc.feed(speech_like_pcm16(300)) + enc.finish()
    info = parse_wav(enc.header(None) + data)
    assert abs(info.duration_ms - 300) < 2
