"""Router SSE → sentence segments → telephony clips. Pure: chunks in, events and bytes out.

The Router announces each sentence with a transcript chunk and then streams its audio
(docs/protocols.md, Inworld §2.4): a transcript that arrives once the current segment has
audio starts a new segment; a transcript before any audio merges into the first segment; the
end of the stream closes the last one. The stream only shows a segment complete when the next
transcript (or the end) arrives, so besides `SegmentClosed` the segmenter reports each
segment's first audio (`SegmentOpened`): the mode sends `play` right then and holds Twilio's
fetch of the clip open until the segment is complete, so the fetch overlaps synthesis.

`ClipEncoder` turns one segment's PCM16 48 kHz into an 8 kHz WAV as the audio arrives
(µ-law by default, band-limited resampling), so a closed segment's clip is ready at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from voiceagent.audio import (
    ROUTER_RATE,
    ULAW_RATE,
    PcmToUlaw,
    WavFormat,
    pcm16_ms,
    resample_pcm16,
    wav_header,
    wrap_wav,
)

ClipFormat = Literal["ulaw_wav", "pcm_wav"]
WAV_CONTENT_TYPE = "audio/wav"


@dataclass(frozen=True, slots=True)
class SegmentOpened:
    """The first audio of segment `index` arrived: its clip can be announced (`play`)."""

    index: int


@dataclass(frozen=True, slots=True)
class SegmentAudio:
    """PCM16 audio of segment `index`."""

    index: int
    pcm: bytes


@dataclass(frozen=True, slots=True)
class SegmentClosed:
    """Segment `index` is complete: `text` is what it says, `duration_ms` its source audio."""

    index: int
    text: str
    duration_ms: float


SegmentEvent = SegmentOpened | SegmentAudio | SegmentClosed


class Segmenter:
    """Splits one Router response into sentence segments (see the module docstring)."""

    def __init__(self, sample_rate: int = ROUTER_RATE) -> None:
        self._rate = sample_rate
        self._index = 0
        self._text = ""
        self._audio_bytes = 0
        self.segments = 0  # segments opened so far

    def feed(self, transcript: str | None, audio: bytes) -> list[SegmentEvent]:
        """One chunk's `delta.audio.transcript` and decoded `delta.audio.data`."""
        events: list[SegmentEvent] = []
        if transcript and self._audio_bytes:
            events.extend(self.finish())
        if transcript:
            self._text += transcript
        if audio:
            if not self._audio_bytes:
                self.segments += 1
                events.append(SegmentOpened(self._index))
            self._audio_bytes += len(audio)
            events.append(SegmentAudio(self._index, audio))
        return events

    def finish(self) -> list[SegmentEvent]:
        """Close the open segment (end of stream, or a failure): [] if it has no audio."""
        if not self._audio_bytes:
            return []
        closed = SegmentClosed(self._index, self._text, pcm16_ms(self._audio_bytes, self._rate))
        self._index += 1
        self._text = ""
        self._audio_bytes = 0
        return [closed]

    @property
    def open(self) -> bool:
        """True while a segment has audio and is not closed."""
        return self._audio_bytes > 0


class ClipEncoder:
    """One segment's PCM16 → an 8 kHz WAV clip (`ulaw_wav` streams; `pcm_wav` at the end)."""

    def __init__(self, fmt: ClipFormat = "ulaw_wav", src_rate: int = ROUTER_RATE) -> None:
        self.fmt = fmt
        self._src_rate = src_rate
        self._ulaw = PcmToUlaw(src_rate) if fmt == "ulaw_wav" else None
        self._pcm: list[bytes] = []
        self.data_bytes = 0

    @property
    def content_type(self) -> str:
        return WAV_CONTENT_TYPE

    def header(self, data_len: int | None) -> bytes:
        """The WAV header; `None` writes the unknown-length form of a streamed WAV."""
        wav_fmt = WavFormat.ULAW if self.fmt == "ulaw_wav" else WavFormat.PCM
        return wav_header(data_len, ULAW_RATE, 1, wav_fmt)

    def wav(self, data: bytes) -> bytes:
        """A complete WAV file (exact lengths, RIFF padding) holding `data`."""
        wav_fmt = WavFormat.ULAW if self.fmt == "ulaw_wav" else WavFormat.PCM
        return wrap_wav(data, ULAW_RATE, 1, wav_fmt)

    def feed(self, pcm: bytes) -> bytes:
        """Encode the next audio; returns the clip data produced so far (may be empty)."""
        if self._ulaw is None:
            self._pcm.append(pcm)
            return b""
        out = self._ulaw.feed(pcm)
        self.data_bytes += len(out)
        return out

    def finish(self) -> bytes:
        """The remaining clip data (the resampler's tail); the encoder is then spent."""
        if self._ulaw is None:
            out = resample_pcm16(b"".join(self._pcm), self._src_rate, ULAW_RATE)
            out = out[: len(out) - len(out) % 2]
            self._pcm.clear()
        else:
            out = self._ulaw.flush()
        self.data_bytes += len(out)
        return out

    @property
    def duration_ms(self) -> float:
        """Duration of the clip data encoded so far."""
        per_ms = ULAW_RATE / 1000 * (1 if self.fmt == "ulaw_wav" else 2)
        return self.data_bytes / per_ms
