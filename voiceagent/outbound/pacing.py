"""Outbound calls per second: each create gets a slot ``1/OUTBOUND_CPS`` after the previous.

Twilio queues creates over the account's CPS limit (1 by default) rather than refusing them,
so a burst would ring phones late and out of order; we space the creates ourselves instead.
``MemoryPacer`` paces one process; ``RedisPacer`` hands out slots from one Redis key (on
Redis's clock) so that every instance together keeps the limit, and paces locally while Redis
is down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

from voiceagent.store.live.redis_backend import DOWN, KEY_PREFIX, RedisBackend

_SLOT_SCRIPT: Final = """
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local next_us = tonumber(redis.call('GET', KEYS[1]) or '0')
local at = math.max(now_us, next_us)
redis.call('SET', KEYS[1], at + tonumber(ARGV[1]), 'PX', 60000)
return at - now_us
"""


class Pacer(Protocol):
    async def slot(self) -> float:
        """Wait for this dial's slot; the seconds it waited."""
        ...


class MemoryPacer:
    """Slots for one process (reserved without awaiting: concurrent dials queue in order)."""

    def __init__(
        self,
        cps: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.interval = 1.0 / cps
        self._clock, self._sleep = clock, sleep
        self._next = 0.0

    def reserve(self) -> float:
        """The seconds from now to the next free slot, which is taken."""
        now = self._clock()
        at = max(now, self._next)
        self._next = at + self.interval
        return at - now

    async def slot(self) -> float:
        delay = self.reserve()
        if delay > 0:
            await self._sleep(delay)
        return delay


class RedisPacer:
    """Slots shared by every instance through one Redis key."""

    def __init__(self, backend: RedisBackend, cps: float, key: str = KEY_PREFIX + "cps") -> None:
        self.interval_us = round(1e6 / cps)
        self._backend = backend
        self._key = key
        self._script = backend.redis.register_script(_SLOT_SCRIPT)
        self._local = MemoryPacer(cps)

    async def slot(self) -> float:
        reply = await self._backend.attempt(
            "outbound_slot", lambda _: self._script(keys=[self._key], args=[self.interval_us])
        )
        if reply is DOWN:
            return await self._local.slot()
        delay = int(reply) / 1e6
        if delay > 0:
            await asyncio.sleep(delay)
        return delay
