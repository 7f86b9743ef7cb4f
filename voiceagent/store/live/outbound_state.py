"""What every instance shares about an outbound call: who it is for, its status, AMD's verdict.

``/calls`` writes it when it dials; ``/voice`` (the callee answered) reads the variables and
number; ``/call-status`` and its AMD callback update it, on whichever instance Twilio reaches.
A number's active calls (dialled, not yet ended) are counted for its ``max_concurrent``.
Kept OUTBOUND_TTL_S; memory for one instance, Redis (one hash per call, changed field by
field in one script, and one sorted set of active calls per number) for several, falling back
to memory while Redis is down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final, Protocol

import orjson
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from voiceagent.logging import get_logger
from voiceagent.store.live.redis_backend import DOWN, KEY_PREFIX, RedisBackend, text
from voiceagent.store.live.ttl_book import TtlBook

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
    connected: bool = False  # a leg with the agent was served (it holds a session, if realtime)

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


class OutboundStore(Protocol):
    async def put(self, call: OutboundCall) -> None:
        """Keep a dialled call (active for its number until a final status)."""
        ...

    async def get(self, call_sid: str) -> OutboundCall | None: ...

    async def update(self, call_sid: str, **changes: object) -> tuple[OutboundCall, bool] | None:
        """Change fields of a known call at once (None if unknown): the call and whether it
        had a final status before. A final status is never replaced by another status (late,
        out-of-order callbacks); reaching one ends the call's activity."""
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

    async def update(self, call_sid: str, **changes: object) -> tuple[OutboundCall, bool] | None:
        call = self.calls.get(call_sid)
        if call is None:
            return None
        was_final = call.final
        if was_final:
            changes.pop("status", None)
        call = replace(call, **changes)  # type: ignore[arg-type]
        self.calls.put(call_sid, call)
        if call.final:
            self._active.get(call.number, {}).pop(call_sid, None)
        return call, was_final

    async def active(self, number: str) -> int:
        calls = self._active.get(number, {})
        stale = self._clock() - ACTIVE_STALE_S
        for sid in [sid for sid, at in calls.items() if at < stale]:
            del calls[sid]
        return len(calls)

    async def close(self) -> None:
        return None


_UPDATE_SCRIPT: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local before = cjson.decode(redis.call('HGET', KEYS[1], 'status') or '""')
local final = {completed=true, busy=true, ['no-answer']=true, failed=true, canceled=true}
for i = 1, #ARGV - 1, 2 do
  if not (ARGV[i] == 'status' and final[before]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[#ARGV])
local fields = redis.call('HGETALL', KEYS[1])
table.insert(fields, final[before] and '1' or '0')
return fields
"""


class RedisOutboundStore:
    """Outbound calls in Redis: ``voiceagent:outbound:<sid>`` (a hash, one JSON value per
    field, so concurrent callbacks change different fields without losing each other's) and
    ``voiceagent:outbound_active:<number>`` (sorted set of sids by dial time)."""

    def __init__(self, backend: RedisBackend, local: MemoryOutboundStore | None = None) -> None:
        self._backend = backend
        self._local = local or MemoryOutboundStore()
        self._ttl_ms = round(OUTBOUND_TTL_S * 1000)
        self._update = backend.redis.register_script(_UPDATE_SCRIPT)

    async def put(self, call: OutboundCall) -> None:
        async def store(redis: Redis) -> None:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.hset(_key(call.call_sid), mapping=_fields(asdict(call)))
                pipe.pexpire(_key(call.call_sid), self._ttl_ms)
                if not call.final:
                    pipe.zadd(_active_key(call.number), {call.call_sid: time.time()})
                    pipe.pexpire(_active_key(call.number), self._ttl_ms)
                await pipe.execute()

        if await self._backend.attempt("outbound_put", store) is DOWN:
            await self._local.put(call)

    async def get(self, call_sid: str) -> OutboundCall | None:
        data = await self._backend.attempt("outbound_get", lambda r: r.hgetall(_key(call_sid)))
        if isinstance(data, dict) and data:
            return _call(data)
        return await self._local.get(call_sid)

    async def update(self, call_sid: str, **changes: object) -> tuple[OutboundCall, bool] | None:
        args: list[FieldT | EncodableT] = [x for pair in _fields(changes).items() for x in pair]
        reply = await self._backend.attempt(
            "outbound_update",
            lambda _: self._update(keys=[_key(call_sid)], args=[*args, self._ttl_ms]),
        )
        if reply is DOWN or not reply:
            return await self._local.update(call_sid, **changes)
        *flat, was_final = reply
        call = _call(dict(zip(flat[::2], flat[1::2], strict=True)))
        if call is None:
            return None
        if call.final:
            await self._backend.attempt(
                "outbound_inactive", lambda r: r.zrem(_active_key(call.number), call_sid)
            )
        return call, text(was_final) == "1"

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


def _fields(values: dict[str, object]) -> dict[FieldT, EncodableT]:
    return {name: orjson.dumps(value).decode() for name, value in values.items()}


def _call(data: dict[Any, Any]) -> OutboundCall | None:
    try:
        fields = {text(k): orjson.loads(v) for k, v in data.items()}
        return OutboundCall(**fields)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        log.error("outbound_call_unreadable", error=type(exc).__name__)
        return None


def _key(call_sid: str) -> str:
    return f"{KEY_PREFIX}outbound:{call_sid[:64]}"


def _active_key(number: str) -> str:
    return f"{KEY_PREFIX}outbound_active:{number[:20]}"
