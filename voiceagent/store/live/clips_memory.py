"""The in-memory clip store: one process's clips, bounded by count and bytes, with a TTL.

A clip is *opened* when its segment's first audio arrives (the mode sends `play` at once),
may receive streamed parts, and is *finished* with its complete body when the segment is
complete. A fetch of an open clip waits (bounded) until it is finished. Clips expire after a
TTL counted from their last change; memory is bounded by evicting the oldest clips.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Final

from voiceagent.errors import ClipNotFound

OPEN_CLIP_WAIT_S: Final = 30.0
"""How long a fetch of an open clip may wait for it to be finished."""


@dataclass(frozen=True, slots=True)
class ClipBody:
    content_type: str
    data: bytes


@dataclass(slots=True, eq=False)
class _Clip:
    content_type: str
    expires: float
    on_fetched: Callable[[], None] | None
    parts: list[bytes] = field(default_factory=list)
    body: bytes | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def size(self) -> int:
        return sum(map(len, self.parts)) + len(self.body or b"")

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class MemoryClipStore:
    """Clips in process memory, bounded by count and bytes, expiring after `ttl_s`."""

    def __init__(
        self,
        ttl_s: float = 120.0,
        max_bytes: int = 64 * 1024 * 1024,
        max_clips: int = 20_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_s
        self._max_bytes = max_bytes
        self._max_clips = max_clips
        self._clock = clock
        self._clips: OrderedDict[str, _Clip] = OrderedDict()
        self._bytes = 0

    async def open(self, content_type: str, on_fetched: Callable[[], None] | None = None) -> str:
        return self.open_now(content_type, on_fetched)

    def open_now(self, content_type: str, on_fetched: Callable[[], None] | None = None) -> str:
        """`open` without awaiting (the id comes from `secrets.token_urlsafe`)."""
        self._expire()
        clip_id = secrets.token_urlsafe(18)
        self._clips[clip_id] = _Clip(content_type, self._clock() + self._ttl, on_fetched)
        self._bound()
        return clip_id

    def append(self, clip_id: str, data: bytes) -> None:
        clip = self._clips.get(clip_id)
        if clip is None or clip.body is not None or not data:
            return
        clip.parts.append(data)
        self._bytes += len(data)
        clip.notify()

    async def finish(self, clip_id: str, body: bytes) -> None:
        self.finish_now(clip_id, body)

    def finish_now(self, clip_id: str, body: bytes) -> bool:
        """`finish` without awaiting; False if the clip is gone (evicted or expired)."""
        clip = self._clips.get(clip_id)
        if clip is None or clip.body is not None:
            return False
        clip.body = body
        clip.expires = self._clock() + self._ttl
        self._bytes += len(body)
        self._clips.move_to_end(clip_id)
        clip.notify()
        self._bound()
        return True

    def peek(self, clip_id: str) -> _Clip | None:
        self._expire()
        return self._clips.get(clip_id)

    async def get(self, clip_id: str, wait: float = OPEN_CLIP_WAIT_S) -> ClipBody:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            clip = self.peek(clip_id)
            if clip is None:
                raise ClipNotFound(clip_id)
            if clip.body is not None:
                return ClipBody(clip.content_type, clip.body)
            try:
                async with asyncio.timeout_at(deadline):
                    await clip.changed.wait()
            except TimeoutError as exc:
                raise ClipNotFound(f"{clip_id} still open after {wait} s") from exc

    def stream(self, clip_id: str) -> AsyncIterator[bytes] | None:
        clip = self.peek(clip_id)
        if clip is None or clip.body is not None or not clip.parts:
            return None
        return self._parts(clip)

    async def _parts(self, clip: _Clip) -> AsyncIterator[bytes]:
        sent = 0
        while True:
            while sent < len(clip.parts):
                sent += 1
                yield clip.parts[sent - 1]
            if clip.body is not None:
                return
            async with asyncio.timeout(OPEN_CLIP_WAIT_S):
                await clip.changed.wait()

    def fetched(self, clip_id: str) -> None:
        clip = self._clips.get(clip_id)
        if clip is not None and clip.on_fetched is not None:
            callback, clip.on_fetched = clip.on_fetched, None
            callback()

    def __len__(self) -> int:
        self._expire()
        return len(self._clips)

    @property
    def bytes_held(self) -> int:
        return self._bytes

    def _drop(self, clip_id: str) -> None:
        clip = self._clips.pop(clip_id)
        self._bytes -= clip.size
        clip.notify()  # waiters re-check and find it gone

    def _expire(self) -> None:
        now = self._clock()
        while self._clips:
            clip_id, clip = next(iter(self._clips.items()))
            if clip.expires > now:
                break
            self._drop(clip_id)

    def _bound(self) -> None:
        while len(self._clips) > 1 and (
            self._bytes > self._max_bytes or len(self._clips) > self._max_clips
        ):
            self._drop(next(iter(self._clips)))

    async def close(self) -> None:
        for clip_id in list(self._clips):
            self._drop(clip_id)
