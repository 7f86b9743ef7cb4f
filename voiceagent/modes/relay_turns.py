"""One agent turn of the relay-router mode: a Router stream turned into `play`s or `text`s.

`ClipSpeaker` plays the Router's own audio: each sentence segment becomes a clip whose `play`
goes out at the segment's first audio (Twilio's fetch is held open until the segment is
complete, so it overlaps synthesis). `TextSpeaker` (voice_source: twilio) streams the text
deltas as `text` tokens for ConversationRelay's TTS. Both report what was handed over to the
`PlaybackTracker`, so a barge-in can cut the history to what the caller heard. On an upstream
failure the audio already received is still played; the caller then hears the apology.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from voiceagent.config import CallPlan
from voiceagent.errors import UpstreamError
from voiceagent.protocols.conversation_relay import Play, RelayOutbound, Text
from voiceagent.protocols.inworld_router import ChatRequest
from voiceagent.runtime import Services
from voiceagent.session.call import CallSession
from voiceagent.session.latency import TurnTiming
from voiceagent.session.playback import PlaybackTracker
from voiceagent.session.segments import (
    WAV_CONTENT_TYPE,
    ClipEncoder,
    SegmentAudio,
    SegmentClosed,
    Segmenter,
    SegmentEvent,
    SegmentOpened,
)
from voiceagent.transport.router_client import stream_chat

TEXT_MS_PER_CHAR = 1000 / 15
"""Rough speaking time of ConversationRelay's TTS, to map an interrupt's ms onto tokens."""

Send = Callable[[RelayOutbound], Awaitable[None]]


class _Clip:
    """One segment's clip being written: encoder, id and the data encoded so far."""

    def __init__(self, clip_id: str, encoder: ClipEncoder) -> None:
        self.id = clip_id
        self.encoder = encoder
        self.parts: list[bytes] = []


class ClipSpeaker:
    """Speaks one Router response as clips (see module docstring)."""

    def __init__(
        self,
        services: Services,
        plan: CallPlan,
        call: CallSession,
        tracker: PlaybackTracker,
        send: Send,
    ) -> None:
        self._services = services
        self._plan = plan
        self._call = call
        self._tracker = tracker
        self._send = send
        self._stream_wav = services.settings.clip_stream_unknown_length
        self._clip: _Clip | None = None

    async def speak(self, response_id: str, request: ChatRequest, timing: TurnTiming) -> None:
        """Run the request to its end; UpstreamError once the audio received is handed over."""
        settings = self._services.settings
        segmenter = Segmenter()
        stream = stream_chat(
            self._services.http, settings.inworld_router_url, settings.inworld_api_key,
            request, settings.router_first_byte_timeout,
        )  # fmt: skip
        try:
            try:
                async for chunk in stream:
                    if chunk.audio:
                        self._call.latency.upstream_byte(time.monotonic())
                    for event in segmenter.feed(chunk.transcript, chunk.audio):
                        await self._on_segment(response_id, event, timing)
                    if chunk.finish_reason is not None:  # the last segment is complete now
                        await self._close(response_id, segmenter, timing)
            finally:
                await stream.aclose()
        except UpstreamError:
            await self._close(response_id, segmenter, timing)
            raise
        except asyncio.CancelledError:
            await self._abandon()
            raise
        await self._close(response_id, segmenter, timing)

    async def _close(self, response_id: str, segmenter: Segmenter, timing: TurnTiming) -> None:
        for event in segmenter.finish():
            await self._on_segment(response_id, event, timing)

    async def _on_segment(self, response_id: str, event: SegmentEvent, timing: TurnTiming) -> None:
        if isinstance(event, SegmentOpened):
            await self._open(timing)
        elif isinstance(event, SegmentAudio):
            self._write(event.pcm)
        elif isinstance(event, SegmentClosed) and self._clip is not None:
            clip, self._clip = self._clip, None
            self._write(b"", last=True, clip=clip)
            await self._services.clips.finish(clip.id, clip.encoder.wav(b"".join(clip.parts)))
            self._tracker.audio_sent(response_id, clip.encoder.duration_ms, event.text)

    async def _open(self, timing: TurnTiming) -> None:
        """Announce the segment's clip at once (`play`); its fetch waits for the audio."""
        first = timing.first_audio_out is None

        def fetched() -> None:
            if timing.clip_fetched is None:
                timing.clip_fetched = time.monotonic()

        clips = self._services.clips
        clip_id = await clips.open(WAV_CONTENT_TYPE, on_fetched=fetched if first else None)
        url = f"{self._services.settings.public_url}/audio/{clip_id}.wav"
        await self._send(Play(source=url))
        self._call.latency.audio_out(time.monotonic())
        encoder = ClipEncoder(self._plan.relay.clip_format)
        self._clip = _Clip(clip_id, encoder)
        if self._stream_wav:
            clips.append(clip_id, encoder.header(None))

    def _write(self, pcm: bytes, *, last: bool = False, clip: _Clip | None = None) -> None:
        clip = clip or self._clip
        if clip is None:
            return
        data = clip.encoder.finish() if last else clip.encoder.feed(pcm)
        if data:
            clip.parts.append(data)
            if self._stream_wav:
                self._services.clips.append(clip.id, data)

    async def _abandon(self) -> None:
        """A clip still open when the turn stops (barge-in): finish it with what it has."""
        clip, self._clip = self._clip, None
        if clip is not None:
            await self._services.clips.finish(clip.id, clip.encoder.wav(b"".join(clip.parts)))


class TextSpeaker:
    """Streams the Router's text deltas as ConversationRelay `text` tokens (Twilio's voice)."""

    def __init__(
        self, services: Services, call: CallSession, tracker: PlaybackTracker, send: Send
    ) -> None:
        self._services = services
        self._call = call
        self._tracker = tracker
        self._send = send

    async def speak(self, response_id: str, request: ChatRequest, timing: TurnTiming) -> None:
        """Send every delta untrimmed, then `last: true`; UpstreamError leaves the turn open."""
        settings = self._services.settings
        stream = stream_chat(
            self._services.http, settings.inworld_router_url, settings.inworld_api_key,
            request, settings.router_first_byte_timeout,
        )  # fmt: skip
        try:
            async for chunk in stream:
                token = chunk.content if chunk.content is not None else chunk.transcript
                if not token:
                    continue
                now = time.monotonic()
                self._call.latency.upstream_byte(now)
                await self._send(Text(token=token))
                self._call.latency.audio_out(now)
                self._tracker.audio_sent(response_id, len(token) * TEXT_MS_PER_CHAR, token)
        finally:
            await stream.aclose()
        await self._send(Text(token="", last=True))
