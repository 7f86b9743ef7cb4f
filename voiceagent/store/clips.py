"""The clip store: short-lived, unguessable audio URLs ConversationRelay fetches for `play`.

A clip is *opened* when its segment's first audio arrives (the mode sends `play` at once),
may receive streamed parts, and is *finished* with its complete body when the segment is
complete. A fetch of an open clip waits (bounded) until it is finished. Clips expire after a
TTL counted from their last change; memory is bounded by evicting the oldest clips.

- `MemoryClipStore`: one process.
- `RedisClipStore`: finished clips also go to Redis with the TTL, so every instance behind a
  load balancer can serve every clip URL; a fetch of a clip still open on another instance
  polls Redis until the body appears (bounded wait).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

from redis.asyncio import Redis

from voiceagent.errors import ClipNotFound
from voiceagent.settings import Settings

OPEN_CLIP_WAIT_S = 30.0
"""How long a fetch of an open clip may wait for it to be finished."""


@dataclass(frozen=True, slots=True)
class ClipBody:
    content_type: str
    data: bytes


class ClipStore(Protocol):
    """What the relay mode and `GET /audio/{id}` need from a clip store."""

    async def open(self, content_type: str, on_fetched: Callable[[], None] | None = None) -> str:
        """Reserve an unguessable id for a clip whose audio is still coming."""
        ...

    def append(self, clip_id: str, data: bytes) -> None:
        """Add streamed body bytes (only used for WAVs streamed with no length)."""
        ...

    async def finish(self, clip_id: str, body: bytes) -> None:
        """The clip is complete: `body` is the whole file; waiting fetches get it."""
        ...

    async def get(self, clip_id: str, wait: float = OPEN_CLIP_WAIT_S) -> ClipBody:
        """The complete clip, waiting while it is open; ClipNotFound if unknown or expired."""
        ...

    def stream(self, clip_id: str) -> AsyncIterator[bytes] | None:
        """The streamed parts of a clip open in this process, else None."""
        ...

    def fetched(self, clip_id: str) -> None:
        """A fetch of the clip completed (reported once to its `on_fetched`)."""
        ...

    async def close(self) -> None: ...


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


class RedisClipStore:
    """Clips served by any instance: bodies in Redis with a TTL, open clips marked there."""

    def __init__(
        self,
        redis: Redis,
        ttl_s: float = 120.0,
        *,
        prefix: str = "voiceagent:clip:",
        poll_s: float = 0.01,
        local: MemoryClipStore | None = None,
    ) -> None:
        self._redis = redis
        self._ttl_ms = max(1, round(ttl_s * 1000))
        self._prefix = prefix
        self._poll_s = poll_s
        self._local = local or MemoryClipStore(ttl_s)

    def _key(self, clip_id: str) -> str:
        return self._prefix + clip_id

    async def open(self, content_type: str, on_fetched: Callable[[], None] | None = None) -> str:
        clip_id = self._local.open_now(content_type, on_fetched)
        await self._redis.set(self._key(clip_id) + ":open", content_type, px=self._ttl_ms)
        return clip_id

    def append(self, clip_id: str, data: bytes) -> None:
        self._local.append(clip_id, data)

    async def finish(self, clip_id: str, body: bytes) -> None:
        clip = self._local.peek(clip_id)
        self._local.finish_now(clip_id, body)
        key = self._key(clip_id)
        content_type = clip.content_type if clip is not None else "audio/wav"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"ct": content_type, "body": body})
            pipe.pexpire(key, self._ttl_ms)
            pipe.delete(key + ":open")
            await pipe.execute()

    async def get(self, clip_id: str, wait: float = OPEN_CLIP_WAIT_S) -> ClipBody:
        if self._local.peek(clip_id) is not None:
            return await self._local.get(clip_id, wait)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        key = self._key(clip_id)
        while True:
            content_type, body = await self._redis.hmget(key, ["ct", "body"])
            if isinstance(body, bytes):
                return ClipBody(_text(content_type) or "audio/wav", body)
            if not await self._redis.exists(key + ":open"):
                raise ClipNotFound(clip_id)
            if loop.time() + self._poll_s > deadline:
                raise ClipNotFound(f"{clip_id} still open after {wait} s")
            await asyncio.sleep(self._poll_s)

    def stream(self, clip_id: str) -> AsyncIterator[bytes] | None:
        return self._local.stream(clip_id)

    def fetched(self, clip_id: str) -> None:
        self._local.fetched(clip_id)

    async def close(self) -> None:
        await self._local.close()
        await self._redis.aclose()


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def make_clip_store(settings: Settings) -> ClipStore:
    """Redis when `REDIS_URL` is set (several instances share clips), else process memory."""
    if settings.redis_url:
        return RedisClipStore(Redis.from_url(settings.redis_url), settings.clip_ttl_seconds)
    return MemoryClipStore(settings.clip_ttl_seconds)
