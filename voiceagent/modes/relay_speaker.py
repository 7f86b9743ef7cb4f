"""One agent reply of relay-router: a Router stream turned into `play`s or `text` tokens.

`ClipSpeaker` plays the Router's own audio: each sentence segment becomes a clip whose `play`
goes out at the segment's first audio (Twilio's fetch is held open until the segment is
complete, so it overlaps synthesis). `TextSpeaker` (voice_source: twilio) streams the text
deltas as `text` tokens for ConversationRelay's TTS. Both tell the call's `RelayCall` what they
handed over, so a barge-in can cut the history to what the caller heard.

Every message of a reply is `preemptible` and the reply ends its talk cycle with `last: true`,
so when newer input starts a new reply while this one's audio is still queued at Twilio, the
new reply's first message preempts the stale audio instead of waiting behind it.

A reply takes one Router chunk per event-loop step: chunks that arrived together are read
from aiohttp's buffer without waiting, and decoding, resampling and sending a burst of them in
one step (a millisecond or more) would hold up the audio of every other call on the loop.

`speak` returns the tool calls the stream made (its `tool_calls` pieces joined); a reply that
only called tools sends nothing, and its follow-up reply closes the talk cycle. The speakers
decide nothing about the turn: they tell the call's machine of every clip announced and fetched
and every token spoken (`clip_announced`, `clip_fetched`, `text_spoken`), and the machine keeps
the turn's timing and, with tools, the playout estimate the agent's end of the call waits for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from voiceagent.config import CallPlan
from voiceagent.protocols import conversation_relay as cr
from voiceagent.protocols.inworld_router import ChatRequest
from voiceagent.runtime import Services
from voiceagent.session.clip_split import ClipSplitter, Cut
from voiceagent.session.relay_call import RelayCall
from voiceagent.session.segments import (
    WAV_CONTENT_TYPE,
    ClipEncoder,
    SegmentAudio,
    SegmentClosed,
    Segmenter,
    SegmentEvent,
    SegmentOpened,
)
from voiceagent.tools.calls import ToolCall
from voiceagent.tools.router_calls import ToolCallAccumulator

Send = Callable[[str], Awaitable[None]]


def end_of_reply() -> str:
    """Closes the reply's talk cycle (the next reply starts a new one)."""
    return cr.dump(cr.Text(token="", last=True, preemptible=True))


class _Clip:
    """One segment's clip being written: encoder, id and the data encoded so far."""

    def __init__(self, clip_id: str, encoder: ClipEncoder) -> None:
        self.id = clip_id
        self.encoder = encoder
        self.parts: list[bytes] = []


class ClipSpeaker:
    """Speaks one Router response as clips (see module docstring)."""

    def __init__(self, services: Services, plan: CallPlan, machine: RelayCall, send: Send):
        self._services = services
        self._plan = plan
        self._machine = machine
        self._send = send
        self._stream_wav = services.settings.clip_stream_unknown_length
        self._clip: _Clip | None = None
        self._spoke = False
        self._split = ClipSplitter(None)

    async def speak(self, response_id: str, request: ChatRequest) -> list[ToolCall]:
        """Run the request to its end; UpstreamError once the audio received is handed over.
        Returns the tool calls the stream made."""
        segmenter, calls = Segmenter(), ToolCallAccumulator()
        self._spoke = False
        self._split = ClipSplitter(self._plan.relay.first_clip_ms)
        stream = self._services.router.stream(request)
        try:
            try:
                async for chunk in stream:
                    if chunk.tool_calls:
                        calls.feed(chunk.tool_calls)
                    if chunk.audio:
                        self._machine.upstream_audio(time.monotonic())
                    for event in segmenter.feed(chunk.transcript, chunk.audio):
                        await self._on_segment(response_id, event)
                    if chunk.finish_reason is not None:  # the last segment is complete now
                        await self._close(response_id, segmenter)
                    await asyncio.sleep(0)  # one chunk per loop step (module docstring)
            finally:
                await stream.aclose()
        except asyncio.CancelledError:
            await self._abandon()
            raise
        finally:
            if not asyncio.current_task().cancelling():  # type: ignore[union-attr]
                await self._close(response_id, segmenter)
        if self._spoke or not calls:
            await self._send(end_of_reply())
        return calls.calls()

    async def _close(self, response_id: str, segmenter: Segmenter) -> None:
        for event in segmenter.finish():
            await self._on_segment(response_id, event)

    async def _on_segment(self, response_id: str, event: SegmentEvent) -> None:
        if isinstance(event, SegmentOpened):
            await self._open(response_id)
            self._split.clip_opened()
        elif isinstance(event, SegmentAudio):
            for piece in self._split.feed(event.pcm, time.monotonic()):
                if isinstance(piece, Cut):  # first_clip_ms: the clip ends here, the segment goes on
                    await self._finish_clip(response_id, "")
                    await self._open(response_id)
                else:
                    self._write(piece)
        elif isinstance(event, SegmentClosed) and self._clip is not None:
            self._write(self._split.flush())
            await self._finish_clip(response_id, event.text)

    async def _finish_clip(self, response_id: str, text: str) -> None:
        """Close the open clip: its last data, the whole WAV for its fetch, the audio sent."""
        clip, self._clip = self._clip, None
        if clip is None:
            return
        self._write(b"", last=True, clip=clip)
        await self._services.clips.finish(clip.id, clip.encoder.wav(b"".join(clip.parts)))
        now = time.monotonic()
        self._split.clip_closed(clip.encoder.duration_ms, now)
        self._machine.reply_audio(response_id, clip.encoder.duration_ms, text, now)

    async def _open(self, response_id: str) -> None:
        """Announce the segment's clip at once (`play`); its fetch waits for the audio. The
        call's machine hears of the announcement and of the fetch (`clip_announced`,
        `clip_fetched`): it keeps the turn's timing and the playout estimate."""
        machine, encoder = self._machine, ClipEncoder(self._plan.relay.clip_format)
        first = machine.awaits_first_audio(response_id)

        def fetched() -> None:
            machine.clip_fetched(response_id, encoder.duration_ms, first, time.monotonic())

        clips = self._services.clips
        wanted = machine.wants_fetch_events(first)
        clip_id = await clips.open(WAV_CONTENT_TYPE, on_fetched=fetched if wanted else None)
        url = f"{self._services.settings.public_url}/audio/{clip_id}.wav"
        await self._send(cr.dump(cr.Play(source=url, preemptible=True)))
        self._spoke = True
        machine.clip_announced(response_id, time.monotonic())
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
        """A clip still open when the reply stops (barge-in): finish it with what it has."""
        clip, self._clip = self._clip, None
        if clip is not None:
            await self._services.clips.finish(clip.id, clip.encoder.wav(b"".join(clip.parts)))


class TextSpeaker:
    """Streams the Router's text deltas as ConversationRelay `text` tokens (Twilio's voice)."""

    def __init__(self, services: Services, machine: RelayCall, send: Send) -> None:
        self._services = services
        self._machine = machine
        self._send = send

    async def speak(self, response_id: str, request: ChatRequest) -> list[ToolCall]:
        """Send every delta untrimmed, then `last: true`; UpstreamError leaves the turn open.
        Returns the tool calls the stream made."""
        stream, calls = self._services.router.stream(request), ToolCallAccumulator()
        spoke = False
        try:
            async for chunk in stream:
                if chunk.tool_calls:
                    calls.feed(chunk.tool_calls)
                token = chunk.content if chunk.content is not None else chunk.transcript
                if not token:
                    continue
                now, spoke = time.monotonic(), True
                self._machine.upstream_audio(now)
                await self._send(cr.dump(cr.Text(token=token, preemptible=True)))
                self._machine.text_spoken(response_id, token, now)
                await asyncio.sleep(0)  # one chunk per loop step (module docstring)
        finally:
            await stream.aclose()
        if spoke or not calls:
            await self._send(end_of_reply())
        return calls.calls()
