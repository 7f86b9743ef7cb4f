"""The clip store: short-lived, unguessable audio URLs ConversationRelay fetches for `play`.

The relay mode *opens* a clip at its segment's first audio and sends `play` at once, so the
fetch can come while the clip is still being made, on any instance behind the balancer.

- `MemoryClipStore` (clips_memory.py): one process.
- `RedisClipStore`: `open` marks the clip *pending* in Redis before `play` goes out; `finish`
  stores the body with the TTL, clears the mark and publishes the clip id. A fetch on an
  instance that did not make the clip reads the mark and the body in one transaction and, while
  pending, waits for that publication (re-checking every `recheck_s` in case one is missed), so
  a clip being made is never answered 404; only an unknown or expired id is. A fetch completed
  on another instance is published back to the maker (for its `on_fetched` timing). While
  Redis is down clips are served by the instance that made them (see `store/shared.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Protocol

from redis.asyncio import Redis

from voiceagent.errors import ClipNotFound
from voiceagent.logging import get_logger
from voiceagent.settings import Settings
from voiceagent.store.live.clips_memory import OPEN_CLIP_WAIT_S, ClipBody, MemoryClipStore
from voiceagent.store.live.redis_backend import DOWN, KEY_PREFIX, SHARED_ERRORS, RedisBackend, text

__all__ = [
    "OPEN_CLIP_WAIT_S",
    "ClipBody",
    "ClipStore",
    "MemoryClipStore",
    "RedisClipStore",
    "make_clip_store",
]
log = get_logger("voiceagent.store")


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


class ClipEvents:
    """One pub/sub subscription per instance: clips finished (wakes local waiters) and clips
    fetched on another instance (reported to this instance's `on_fetched`)."""

    def __init__(self, backend: RedisBackend, prefix: str, on_fetched: Callable[[str], None]):
        self.done_channel = prefix + "done"
        self.fetched_channel = prefix + "fetched"
        self._backend = backend
        self._on_fetched = on_fetched
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="clip-events")

    async def subscribed(self, within_s: float = 1.0) -> None:
        """Start listening and wait (bounded) until subscribed; waiters re-check regardless."""
        self.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), within_s)

    @contextlib.contextmanager
    def waiter(self, clip_id: str) -> Iterator[asyncio.Event]:
        """An Event set whenever `clip_id` is published as finished (register before checking)."""
        event = asyncio.Event()
        self._waiters.setdefault(clip_id, set()).add(event)
        try:
            yield event
        finally:
            events = self._waiters[clip_id]
            events.discard(event)
            if not events:
                del self._waiters[clip_id]

    async def _listen(self) -> None:
        while True:
            try:
                async with self._backend.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.done_channel, self.fetched_channel)
                    self._subscribed.set()
                    self._backend.health.succeeded()
                    while True:
                        message = await pubsub.get_message(True, timeout=1.0)
                        if message is not None:
                            self._dispatch(text(message["channel"]), text(message["data"]) or "")
            except SHARED_ERRORS as exc:
                self._subscribed.clear()
                if self._backend.health.up:  # report the outage; fetches fall back meanwhile
                    self._backend.health.failed("clip_subscribe", exc)
                await asyncio.sleep(1.0)

    def _dispatch(self, channel: str | None, clip_id: str) -> None:
        if channel == self.done_channel:
            for event in self._waiters.get(clip_id, ()):
                event.set()
        elif channel == self.fetched_channel:
            self._on_fetched(clip_id)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class RedisClipStore:
    """Clips served by any instance: pending marks and bodies in Redis with the TTL."""

    def __init__(
        self,
        redis: Redis | RedisBackend,
        ttl_s: float = 120.0,
        *,
        prefix: str = KEY_PREFIX + "clip:",
        recheck_s: float = 0.5,
        local: MemoryClipStore | None = None,
    ) -> None:
        self._owns = isinstance(redis, Redis)
        self._backend = RedisBackend(redis) if isinstance(redis, Redis) else redis
        self._ttl_ms = max(1, round(ttl_s * 1000))
        self._prefix = prefix
        self._recheck_s = recheck_s
        self._local = local or MemoryClipStore(ttl_s)
        self._events = ClipEvents(self._backend, prefix, self._local.fetched)
        self._tasks: set[asyncio.Task[Any]] = set()

    def _key(self, clip_id: str) -> str:
        return self._prefix + clip_id

    async def open(self, content_type: str, on_fetched: Callable[[], None] | None = None) -> str:
        clip_id = self._local.open_now(content_type, on_fetched)
        self._events.start()  # fetches on other instances report back
        pending = self._key(clip_id) + ":open"
        await self._backend.attempt("clip_open", lambda r: r.set(pending, "1", px=self._ttl_ms))
        return clip_id

    def append(self, clip_id: str, data: bytes) -> None:
        self._local.append(clip_id, data)

    async def finish(self, clip_id: str, body: bytes) -> None:
        clip = self._local.peek(clip_id)
        self._local.finish_now(clip_id, body)  # False if evicted here: Redis still gets it
        key = self._key(clip_id)
        content_type = clip.content_type if clip is not None else "audio/wav"

        async def store(redis: Redis) -> None:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping={"ct": content_type, "body": body})
                pipe.pexpire(key, self._ttl_ms)
                pipe.delete(key + ":open")
                pipe.publish(self._events.done_channel, clip_id)
                await pipe.execute()

        await self._backend.attempt("clip_finish", store)

    async def get(self, clip_id: str, wait: float = OPEN_CLIP_WAIT_S) -> ClipBody:
        if self._local.peek(clip_id) is not None:
            return await self._local.get(clip_id, wait)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        with self._events.waiter(clip_id) as finished:
            await self._events.subscribed()
            while True:
                finished.clear()
                state = await self._backend.attempt("clip_get", lambda r: self._state(r, clip_id))
                if state is DOWN:
                    raise ClipNotFound(f"{clip_id}: shared store unavailable")
                body, pending = state
                if body is not None:
                    return body
                if not pending:
                    raise ClipNotFound(clip_id)
                if loop.time() >= deadline:
                    raise ClipNotFound(f"{clip_id} still open after {wait} s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        finished.wait(), min(self._recheck_s, deadline - loop.time())
                    )

    async def _state(self, redis: Redis, clip_id: str) -> tuple[ClipBody | None, bool]:
        """The finished body, if any, and whether the clip is pending: one atomic read."""
        key = self._key(clip_id)
        async with redis.pipeline(transaction=True) as pipe:
            pipe.hmget(key, ["ct", "body"])
            pipe.exists(key + ":open")
            (content_type, body), pending = await pipe.execute()
        if isinstance(body, bytes):
            return ClipBody(text(content_type) or "audio/wav", body), False
        return None, bool(pending)

    def stream(self, clip_id: str) -> AsyncIterator[bytes] | None:
        return self._local.stream(clip_id)

    def fetched(self, clip_id: str) -> None:
        if self._local.peek(clip_id) is not None:
            self._local.fetched(clip_id)
            return
        channel = self._events.fetched_channel
        task = asyncio.create_task(
            self._backend.attempt("clip_fetched", lambda r: r.publish(channel, clip_id))
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        await self._events.close()
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
        await self._local.close()
        if self._owns:
            await self._backend.close()


def make_clip_store(settings: Settings, backend: RedisBackend | None = None) -> ClipStore:
    """Redis when `REDIS_URL` is set (several instances share clips), else process memory.
    `backend` is the app's shared Redis (see store/factory.py); without it the store owns one."""
    if backend is not None:
        return RedisClipStore(backend, settings.clip_ttl_seconds)
    if settings.redis_url:
        return RedisClipStore(
            RedisBackend.from_url(settings.redis_url).redis, settings.clip_ttl_seconds
        )
    return MemoryClipStore(settings.clip_ttl_seconds)
