"""The Inworld Realtime session budget: at most N concurrent sessions across all instances.

Inworld caps concurrent Realtime sessions per account. Each call holds a *lease* keyed by its
CallSid that expires unless renewed, so an instance that dies (SIGKILL, lost host) frees its
slots within one lease time and nothing leaks. `/voice` acquires (a realtime number at the cap
goes to its fallback instead), the call renews while it runs (`hold()`), and releases at its end.

- `MemoryRealtimeBudget`: one instance.
- `RedisRealtimeBudget`: a sorted set (member = CallSid, score = expiry in Redis server
  milliseconds, so instance clocks do not matter); each operation is one Lua script that first
  drops expired leases. While Redis is down it falls back to its own memory budget with the
  same cap (the cap then holds per instance only; logged and counted by `BackendHealth`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final, Protocol

from voiceagent.store.live.redis_backend import DOWN, KEY_PREFIX, RedisBackend

DEFAULT_BUDGET: Final = 20
DEFAULT_LEASE_S: Final = 60.0


class RealtimeBudget(Protocol):
    """Shared leases on Inworld Realtime sessions."""

    cap: int
    lease_s: float
    last_in_use: int
    """Sessions in use as of the last operation (for a gauge that cannot await)."""

    async def acquire(self, call_sid: str, lease_s: float | None = None) -> bool:
        """Take a slot for the call (or refresh the one it holds) for `lease_s` (default: the
        budget's); False at the cap."""
        ...

    async def rekey(self, old: str, new: str) -> None:
        """Move the lease held under `old` (a dial's reservation) to `new` (its CallSid),
        keeping its expiry; no-op if `old` holds none."""
        ...

    async def renew(self, call_sid: str) -> bool:
        """Extend the call's lease by `lease_s` (retaking it if it expired and there is room);
        False if it expired and the budget is now full."""
        ...

    async def release(self, call_sid: str) -> None:
        """Free the call's slot (no-op if it holds none)."""
        ...

    async def in_use(self) -> int:
        """Leases currently held (expired ones dropped)."""
        ...

    async def close(self) -> None: ...


async def hold(budget: RealtimeBudget, call_sid: str) -> None:
    """Renew the call's lease every third of the lease time until cancelled (run it beside
    the call); returns if the lease was lost and the budget is full (after a long stall)."""
    while True:
        await asyncio.sleep(budget.lease_s / 3)
        if not await budget.renew(call_sid):
            return


class MemoryRealtimeBudget:
    """Leases in this process: call_sid → expiry."""

    def __init__(
        self,
        cap: int = DEFAULT_BUDGET,
        lease_s: float = DEFAULT_LEASE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cap = cap
        self.lease_s = lease_s
        self.last_in_use = 0
        self._clock = clock
        self._leases: dict[str, float] = {}

    def _drop_expired(self) -> float:
        now = self._clock()
        for call_sid in [sid for sid, expiry in self._leases.items() if expiry <= now]:
            del self._leases[call_sid]
        return now

    async def acquire(self, call_sid: str, lease_s: float | None = None) -> bool:
        now = self._drop_expired()
        granted = call_sid in self._leases or len(self._leases) < self.cap
        if granted:
            self._leases[call_sid] = now + (self.lease_s if lease_s is None else lease_s)
        self.last_in_use = len(self._leases)
        return granted

    async def rekey(self, old: str, new: str) -> None:
        expiry = self._leases.pop(old, None)
        if expiry is not None:
            self._leases[new] = expiry

    async def renew(self, call_sid: str) -> bool:
        return await self.acquire(call_sid)

    def holds(self, call_sid: str) -> bool:
        self._drop_expired()
        return call_sid in self._leases

    def __len__(self) -> int:
        self._drop_expired()
        return len(self._leases)

    async def release(self, call_sid: str) -> None:
        self._leases.pop(call_sid, None)
        self._drop_expired()
        self.last_in_use = len(self._leases)

    async def in_use(self) -> int:
        self._drop_expired()
        self.last_in_use = len(self._leases)
        return self.last_in_use

    async def close(self) -> None:
        return None


# KEYS[1] = the lease set; ARGV = op ("acquire" | "renew" | "release" | "count" | "rekey"),
# call_sid, cap, lease ms, new call_sid (rekey). Acquire and renew both extend a held lease or
# take a free slot (a lease that expired during a stall is taken back if there is room); rekey
# moves a lease to another member with its expiry. Returns {1|0, leases in use}.
_LEASE_SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local op, sid, cap, lease = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local ok = 0
if op == 'release' then
  redis.call('ZREM', KEYS[1], sid)
elseif op == 'rekey' then
  local expiry = redis.call('ZSCORE', KEYS[1], sid)
  if expiry then
    redis.call('ZREM', KEYS[1], sid)
    redis.call('ZADD', KEYS[1], expiry, ARGV[5])
    ok = 1
  end
elseif op ~= 'count' then
  local held = redis.call('ZSCORE', KEYS[1], sid)
  if held or redis.call('ZCARD', KEYS[1]) < cap then
    redis.call('ZADD', KEYS[1], now + lease, sid)
    if redis.call('PTTL', KEYS[1]) < lease then  -- the set outlives its longest lease
      redis.call('PEXPIRE', KEYS[1], lease)
    end
    ok = 1
  end
end
return {ok, redis.call('ZCARD', KEYS[1])}
"""


class RedisRealtimeBudget:
    """Leases in a Redis sorted set shared by every instance; local memory while Redis is down."""

    def __init__(
        self,
        backend: RedisBackend,
        cap: int = DEFAULT_BUDGET,
        lease_s: float = DEFAULT_LEASE_S,
        *,
        key: str = KEY_PREFIX + "realtime_sessions",
        owns: bool = False,
    ) -> None:
        self.cap = cap
        self.lease_s = lease_s
        self.last_in_use = 0
        self._backend = backend
        self._key = key
        self._owns = owns
        self._script = backend.redis.register_script(_LEASE_SCRIPT)
        self._local = MemoryRealtimeBudget(cap, lease_s)

    async def _run(
        self, op: str, call_sid: str = "", lease_s: float | None = None, new: str = ""
    ) -> bool | None:
        """The script's verdict, or None if Redis is down."""
        lease_ms = round((self.lease_s if lease_s is None else lease_s) * 1000)
        args: list[str | int] = [op, call_sid, self.cap, lease_ms, new]
        reply = await self._backend.attempt(
            f"session_{op}", lambda _: self._script(keys=[self._key], args=args)
        )
        if reply is DOWN:
            return None
        ok, count = reply
        self.last_in_use = int(count) + len(self._local)
        return bool(ok)

    async def acquire(self, call_sid: str, lease_s: float | None = None) -> bool:
        granted = await self._run("acquire", call_sid, lease_s)
        if granted is None:
            return await self._local.acquire(call_sid, lease_s)
        return granted

    async def rekey(self, old: str, new: str) -> None:
        if self._local.holds(old):  # reserved while Redis was down
            await self._local.rekey(old, new)
        else:
            await self._run("rekey", old, new=new)

    async def renew(self, call_sid: str) -> bool:
        if self._local.holds(call_sid):  # a lease taken while Redis was down
            return await self._local.renew(call_sid)
        held = await self._run("renew", call_sid)
        return True if held is None else held  # Redis down: the call keeps its session

    async def release(self, call_sid: str) -> None:
        await self._local.release(call_sid)
        await self._run("release", call_sid)

    async def in_use(self) -> int:
        await self._run("count")
        return self.last_in_use

    async def close(self) -> None:
        if self._owns:
            await self._backend.close()
