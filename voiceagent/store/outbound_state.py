"""What every instance shares about an outbound call: who it is for, its status, AMD's verdict.

``/calls`` writes it when it dials; ``/voice`` (the callee answered) reads the variables and
number; ``/call-status`` and its AMD callback update it, on whichever instance Twilio reaches.
A number's active calls (dialled, not yet ended) are counted for its ``max_concurrent``.
Kept OUTBOUND_TTL_S; memory for one instance, Redis (one hash per call, one sorted set of
active calls per number) for several, falling back to memory while Redis is down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Final, Protocol

import orjson
from redis.asyncio import Redis

from voiceagent.logging import get_logger
from voiceagent.store.shared import DOWN, KEY_PREFIX, RedisBackend
from voiceagent.store.ttl_book import TtlBook

log = get_logger("voiceagent.store")

OUTBOUND_TTL_S: Final = 6 * 3600.0
ACTIVE_STALE_S: Final = 3 * 3600.0  # a call still "active" after this is not counted
FINAL_STATUSES: Final = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})


@dataclass(frozen=True, slots=True)
class OutboundCall:
    """One outbound call as the instances share it (``to`` is personal data: not logged)."""

    call_sid: str
    number: str  # ours: the configured number the call is from
    to: str
    variables: dict[str, str] = field(default_factory=dict)
    status: str = "queued"
    answered_by: str | None = None
    arm: str | None = None
    mode: str | None = None
    duration_s: int | None = None
    created_at: float = 0.0  # unix seconds

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, data: bytes | str) -> OutboundCall | None:
        try:
            fields = orjson.loads(data)
            return cls(**fields)
        except (ValueError, TypeError) as exc:
            log.error("outbound_call_unreadable", error=type(exc).__name__)
            return None


class OutboundStore(Protocol):
    async def put(self, call: OutboundCall) -> None:
        """Keep a dialled call (active for its number until a final status)."""
        ...

    async def get(self, call_sid: str) -> OutboundCall | None: ...

    async def update(self, call_sid: str, **changes: object) -> OutboundCall | None:
        """Change fields of a known call (None if unknown); a final status ends its activity."""
        ...

    async def active(self, number: str) -> int:
        """The number's calls dialled and not yet ended (on every instance)."""
        ...

    async def close(self) -> None: ...


class MemoryOutboundStore:
    """One instance's outbound calls."""

    def __init__(self, clock: Callable[[], float] = time.time, max_calls: int = 100_000) -> None:
        self.calls: TtlBook[OutboundCall] = TtlBook(OUTBOUND_TTL_S, max_calls, time.monotonic)
        self._active: dict[str, dict[str, float]] = {}
        self._clock = clock

    async def put(self, call: OutboundCall) -> None:
        self.calls.put(call.call_sid, call)
        if not call.final:
            self._active.setdefault(call.number, {})[call.call_sid] = self._clock()

    async def get(self, call_sid: str) -> OutboundCall | None:
        return self.calls.get(call_sid)

    async def update(self, call_sid: str, **changes: object) -> OutboundCall | None:
        call = self.calls.get(call_sid)
        if call is None:
            return None
        call = replace(call, **changes)  # type: ignore[arg-type]
        self.calls.put(call_sid, call)
        if call.final:
            self._active.get(call.number, {}).pop(call_sid, None)
        return call

    async def active(self, number: str) -> int:
        calls = self._active.get(number, {})
        stale = self._clock() - ACTIVE_STALE_S
        for sid in [sid for sid, at in calls.items() if at < stale]:
            del calls[sid]
        return len(calls)

    async def close(self) -> None:
        return None


class RedisOutboundStore:
    """Outbound calls in Redis: ``voiceagent:outbound:<sid>`` (JSON) and
    ``voiceagent:outbound_active:<number>`` (sorted set of sids by dial time)."""

    def __init__(self, backend: RedisBackend, local: MemoryOutboundStore | None = None) -> None:
        self._backend = backend
        self._local = local or MemoryOutboundStore()
        self._ttl_ms = round(OUTBOUND_TTL_S * 1000)

    async def put(self, call: OutboundCall) -> None:
        async def store(redis: Redis) -> None:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.set(_key(call.call_sid), call.to_json(), px=self._ttl_ms)
                if not call.final:
                    pipe.zadd(_active_key(call.number), {call.call_sid: time.time()})
                    pipe.pexpire(_active_key(call.number), self._ttl_ms)
                await pipe.execute()

        if await self._backend.attempt("outbound_put", store) is DOWN:
            await self._local.put(call)

    async def get(self, call_sid: str) -> OutboundCall | None:
        data = await self._backend.attempt("outbound_get", lambda r: r.get(_key(call_sid)))
        if isinstance(data, bytes):
            return OutboundCall.from_json(data)
        return await self._local.get(call_sid)

    async def update(self, call_sid: str, **changes: object) -> OutboundCall | None:
        call = await self.get(call_sid)
        if call is None:
            return None
        call = replace(call, **changes)  # type: ignore[arg-type]

        async def store(redis: Redis) -> None:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.set(_key(call_sid), call.to_json(), px=self._ttl_ms)
                if call.final:
                    pipe.zrem(_active_key(call.number), call_sid)
                await pipe.execute()

        if await self._backend.attempt("outbound_update", store) is DOWN:
            await self._local.put(call)
            await self._local.update(call_sid)
        return call

    async def active(self, number: str) -> int:
        async def count(redis: Redis) -> int:
            key = _active_key(number)
            await redis.zremrangebyscore(key, 0, time.time() - ACTIVE_STALE_S)
            return int(await redis.zcard(key))

        found = await self._backend.attempt("outbound_active", count)
        local = await self._local.active(number)
        return local if found is DOWN else found + local

    async def close(self) -> None:
        return None


def _key(call_sid: str) -> str:
    return f"{KEY_PREFIX}outbound:{call_sid[:64]}"


def _active_key(number: str) -> str:
    return f"{KEY_PREFIX}outbound_active:{number[:20]}"
