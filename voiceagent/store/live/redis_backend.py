"""The shared Redis every instance uses, and what happens when it does not answer.

`RedisBackend` holds one client (short socket timeouts, one quick retry) for all the shared
stores of an app, and a `BackendHealth`. A store runs each Redis operation through
`RedisBackend.attempt`: on a Redis or socket error the operation answers `DOWN` and the store
serves it from its local memory instead, so a Redis outage (at start or mid-run) never raises
into a call. The first failure logs `shared_store_down` (error) and counts an outage; while down,
Redis is left alone for `retry_s`, then tried again; the first success logs `shared_store_up`.
Metrics read `health.up`, `health.outages` and `health.fallbacks`, or pass `on_change`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Final, Literal, TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from voiceagent.logging import get_logger

T = TypeVar("T")
log = get_logger("voiceagent.store")

SHARED_ERRORS: Final = (RedisError, OSError, TimeoutError)
"""What a Redis operation raises when Redis is unreachable, stalled or refuses."""

KEY_PREFIX: Final = "voiceagent:"


class Down(Enum):
    """The answer of an operation Redis could not serve."""

    DOWN = "down"


DOWN: Final = Down.DOWN


class BackendHealth:
    """Up or down, with transitions logged once and counted (read by the metrics)."""

    def __init__(
        self,
        name: str = "redis",
        *,
        retry_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.name = name
        self.up = True
        self.outages = 0
        """Transitions from up to down."""
        self.fallbacks = 0
        """Operations served from local memory because the backend was down."""
        self.on_change = on_change
        self._retry_s = retry_s
        self._clock = clock
        self._retry_at = 0.0

    def usable(self) -> bool:
        """Whether to try the backend now: always while up; while down, one operation per
        `retry_s` tries it (the others fall back at once, so a stalled Redis costs one
        timeout per `retry_s`, not one per operation)."""
        if self.up:
            return True
        now = self._clock()
        if now >= self._retry_at:
            self._retry_at = now + self._retry_s
            return True
        self.fallbacks += 1
        return False

    def failed(self, op: str, exc: BaseException) -> None:
        self.fallbacks += 1
        self._retry_at = self._clock() + self._retry_s
        if not self.up:
            return
        self.up = False
        self.outages += 1
        log.error(
            "shared_store_down", backend=self.name, op=op, error=type(exc).__name__,
            outages=self.outages, message="serving call state, clips and the session budget "
            "from this instance's memory until it answers again",
        )  # fmt: skip
        if self.on_change is not None:
            self.on_change(False)

    def succeeded(self) -> None:
        if self.up:
            return
        self.up = True
        log.warning("shared_store_up", backend=self.name, fallbacks=self.fallbacks)
        if self.on_change is not None:
            self.on_change(True)


class RedisBackend:
    """One Redis client shared by the stores of an app, with its health."""

    def __init__(self, redis: Redis, health: BackendHealth | None = None) -> None:
        self.redis = redis
        self.health = health or BackendHealth()

    @classmethod
    def from_url(cls, url: str, *, timeout_s: float = 1.0) -> RedisBackend:
        """A client that gives up quickly: a stalled Redis must not stall `/voice` or a call."""
        redis = Redis.from_url(
            url,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=30,
        )
        return cls(redis)

    async def attempt(
        self, op: str, action: Callable[[Redis], Awaitable[T]]
    ) -> T | Literal[Down.DOWN]:
        """`action(redis)`, or DOWN (logged, counted) if Redis is down or fails now."""
        if not self.health.usable():
            return DOWN
        try:
            result = await action(self.redis)
        except SHARED_ERRORS as exc:
            self.health.failed(op, exc)
            return DOWN
        self.health.succeeded()
        return result

    async def put(self, op: str, key: str, value: bytes, ttl_ms: int) -> bool:
        """SET `key` with a time to live; False if Redis is down (keep it in memory instead)."""
        return await self.attempt(op, lambda r: r.set(key, value, px=ttl_ms)) is not DOWN

    async def get(self, op: str, key: str) -> bytes | None:
        """GET `key`: its bytes, or None if it is absent or Redis is down (try memory)."""
        data = await self.attempt(op, lambda r: r.get(key))
        return data if isinstance(data, bytes) else None

    async def close(self) -> None:
        await self.redis.aclose()


def text(value: bytes | str | None) -> str | None:
    """A Redis reply as str (clients here do not decode responses)."""
    if value is None or isinstance(value, str):
        return value
    return value.decode()
