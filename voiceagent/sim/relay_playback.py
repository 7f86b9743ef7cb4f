"""The simulated ConversationRelay's playback side: what Twilio does with `play` and `text`.

Every `play` URL is fetched at once, as Twilio would, and the clip checked (`check_clip` in
relay_records.py: a WAV at 8 kHz, µ-law or 16-bit PCM, mono, with a duration); clips and text
cycles are then "played" in order, each clip for its duration and text at ~15 chars/s, on a
clock that a speed factor accelerates. An interrupt stops playback and reports how long and
which text was played. The records (clips, turns, the call) are re-exported from there.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from voiceagent.sim.relay_records import (
    WAV_TYPES,
    ClipRecord,
    RelayCallRecord,
    TurnRecord,
    check_clip,
)

__all__ = [
    "TTS_CHARS_PER_S",
    "WAV_TYPES",
    "ClipRecord",
    "Player",
    "RelayCallRecord",
    "TurnRecord",
    "check_clip",
]
TTS_CHARS_PER_S = 15.0


@dataclass(slots=True)
class _Item:
    clip: ClipRecord | None = None
    fetch: asyncio.Task[bytes] | None = None
    text: str = ""
    complete: bool = False
    turn: TurnRecord | None = None  # the reply it belongs to
    preemptible: bool = False
    cycle: int = 0  # the talk cycle it came in (a `last: true` text closes one)


class Player:
    """Queue of clips and text cycles played in order on an accelerated clock."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, public_url: str, speed: float):
        self._http = http
        self._base = base_url.rstrip("/")
        self._public = public_url.rstrip("/")
        self._speed = speed
        self._queue: list[_Item] = []
        self._text_item: _Item | None = None
        self.turn: TurnRecord | None = None
        self.playing: _Item | None = None
        self._elapsed = 0.0  # agent playback of the current turn before the playing piece
        self._play_start: float | None = None
        self._play_ms = 0.0
        self._play_text = ""
        self._stop = asyncio.Event()
        self.spoken = ""  # text of the current turn played so far
        self.tasks: set[asyncio.Task[bytes]] = set()
        self._wake = asyncio.Event()
        self._cycle = 0
        self._cycle_closed = False

    # -- input -------------------------------------------------------------------------------
    def on_play(self, source: str, now: float, preemptible: bool = False) -> None:
        self._next_message()
        record = ClipRecord(source, now)
        if self.turn is not None:
            self.turn.clips.append(record)
            if self.turn.first_play_at is None:
                self.turn.first_play_at = now
        fetch = asyncio.create_task(self._fetch(record, self.turn))
        self.tasks.add(fetch)
        fetch.add_done_callback(self.tasks.discard)
        self._push(_Item(clip=record, fetch=fetch, complete=True, preemptible=preemptible))

    def on_text(self, token: str, last: bool, now: float, preemptible: bool = False) -> None:
        self._next_message()
        if self.turn is not None and self.turn.first_text_at is None and token:
            self.turn.first_text_at = now
        if self._text_item is None:
            self._text_item = _Item(preemptible=preemptible)
            self._push(self._text_item)
        self._text_item.text += token
        if last:
            self._text_item.complete = True
            self._text_item = None
            self._cycle_closed = True
        self._wake.set()

    def _next_message(self) -> None:
        """A message after a closed talk cycle opens the next one, and preempts what is left
        of earlier cycles marked `preemptible` (queued or playing). Our reading of Twilio's
        `preemptible`: messages of one cycle never preempt each other."""
        if not self._cycle_closed:
            return
        self._cycle += 1
        self._cycle_closed = False
        stale = [i for i in self._queue if i.preemptible and i.cycle < self._cycle]
        for item in stale:
            if item.turn is not None:
                item.turn.preempted = True
        if not stale:
            return
        self._queue = [i for i in self._queue if i not in stale]
        if self.playing in stale:
            self.playing = None
            self._stop.set()
        self._wake.set()

    def new_turn(self, turn: TurnRecord) -> None:
        self.turn = turn
        self._elapsed = 0.0
        self.spoken = ""

    def _push(self, item: _Item) -> None:
        item.turn, item.cycle = self.turn, self._cycle
        self._queue.append(item)
        self._wake.set()

    @property
    def idle(self) -> bool:
        return not self._queue and self.playing is None and self._text_item is None

    @property
    def elapsed_ms(self) -> float:
        """Agent playback of the current turn so far (agent time), live while playing."""
        if self._play_start is None:
            return self._elapsed
        live = (time.monotonic() - self._play_start) * self._speed * 1000
        return self._elapsed + min(live, self._play_ms)

    def stop(self) -> tuple[float, str]:
        """Barge-in: drop everything queued; returns (ms played, text played) of the turn."""
        elapsed = self.elapsed_ms
        spoken = self.spoken
        if self._play_start is not None and self._play_ms > 0:
            fraction = (elapsed - self._elapsed) / self._play_ms
            spoken += self._play_text[: int(len(self._play_text) * fraction)]
        self._queue.clear()
        self._text_item = None
        self.playing = None
        self._stop.set()
        if self.turn is not None:
            self.turn.interrupted = True
            self.turn.heard_ms, self.turn.text = elapsed, spoken
        self._wake.set()
        return elapsed, spoken

    # -- playback ----------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            item = self._queue[0]
            self.playing = item
            if item.fetch is not None:
                await self._play_clip(item)
            else:
                await self._speak(item)
            if self.playing is item:
                self._queue.pop(0)
                self.playing = None

    async def _play_clip(self, item: _Item) -> None:
        assert item.fetch is not None and item.clip is not None
        await asyncio.wait([item.fetch])
        item.clip.played_at = time.monotonic()
        await self._advance(item, item.clip.duration_ms, "")
        if self.playing is item and not self._stop.is_set():
            item.clip.played_until = time.monotonic()

    async def _speak(self, item: _Item) -> None:
        spoken = 0
        while self.playing is item and (not item.complete or spoken < len(item.text)):
            if spoken >= len(item.text):
                self._wake.clear()
                await self._wake.wait()
                continue
            text = item.text[spoken:]
            spoken = len(item.text)
            await self._advance(item, len(text) / TTS_CHARS_PER_S * 1000, text)

    async def _advance(self, item: _Item, ms: float, text: str) -> None:
        """Play `ms` of agent audio (speaking `text`) unless a barge-in stops it first."""
        self._stop = stop = asyncio.Event()
        self._play_start, self._play_ms, self._play_text = time.monotonic(), ms, text
        turn = item.turn
        if turn is not None and turn.first_heard_at is None and ms > 0:
            turn.first_heard_at = self._play_start
        try:
            async with asyncio.timeout(ms / 1000 / self._speed):
                await stop.wait()
        except TimeoutError:
            pass
        self._play_start = None
        if stop.is_set() or self.playing is not item:
            return  # stop() accounted for the part played
        if turn is not self.turn:  # a reply older than the current one: its own record only
            if turn is not None:
                turn.heard_ms += ms
                turn.text += text
            return
        self._elapsed += ms
        self.spoken += text
        if self.turn is not None:
            self.turn.heard_ms = self._elapsed
            self.turn.text += text

    async def _fetch(self, record: ClipRecord, turn: TurnRecord | None) -> bytes:
        url = record.url.replace(self._public, self._base, 1)
        try:
            async with self._http.get(url, timeout=aiohttp.ClientTimeout(total=30)) as resp:
                body = await resp.read()
                record.status, record.content_length = resp.status, resp.content_length
                record.content_type = resp.headers.get("Content-Type", "").split(";")[0]
        except (aiohttp.ClientError, TimeoutError) as exc:
            record.error = f"fetch failed: {exc!r}"
            return b""
        record.fetch_done = time.monotonic()
        if turn is not None and turn.first_clip_fetched_at is None and record.status == 200:
            turn.first_clip_fetched_at = record.fetch_done
        record.error = check_clip(record, body)
        return body
