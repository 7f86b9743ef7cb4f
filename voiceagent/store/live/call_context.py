"""Per-call business context another instance may need: the call's facts and its context.

- facts: who called whom and which way (`from`, `to`, `direction`), written by `/voice` (or
  the outbound dialer) and read when the call's events are built;
- context: the call-context webhook's outcome (the answer, or why the YAML is used), fetched
  once per call: whoever `claim`s the call fetches, every other instance waits for the value.

Kept an hour (like the plan). `MemoryCallContext` serves one instance; `RedisCallContext`
shares through Redis and, when Redis does not answer, serves from its own memory.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Final, Protocol

import orjson

from voiceagent.store.live.redis_backend import DOWN, KEY_PREFIX, RedisBackend
from voiceagent.store.live.ttl_book import TtlBook

CONTEXT_TTL_S: Final = 3600.0
MAX_VALUE_BYTES: Final = 256 * 1024

Facts = dict[str, str]


class CallContextStore(Protocol):
    """What every leg of a call shares about its caller and its business context."""

    async def put_facts(self, call_sid: str, facts: Facts) -> None: ...

    async def get_facts(self, call_sid: str) -> Facts | None: ...

    async def claim(self, call_sid: str) -> bool:
        """True for the first claimer of the call's context fetch (only it fetches)."""
        ...

    async def put_context(self, call_sid: str, value: bytes) -> None: ...

    async def get_context(self, call_sid: str) -> bytes | None: ...

    async def put_note(self, call_sid: str, name: str, value: bytes) -> None:
        """Keep a small named fact about the call (`ended`, `recording`)."""
        ...

    async def get_note(self, call_sid: str, name: str) -> bytes | None: ...

    async def close(self) -> None: ...


class MemoryCallContext:
    """One instance's facts and contexts, bounded and expiring."""

    def __init__(
        self, *, ttl_s: float = CONTEXT_TTL_S, max_calls: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.facts: TtlBook[Facts] = TtlBook(ttl_s, max_calls, clock)
        self.claims: TtlBook[bool] = TtlBook(ttl_s, max_calls, clock)
        self.contexts: TtlBook[bytes] = TtlBook(ttl_s, max_calls, clock)
        self.notes: TtlBook[bytes] = TtlBook(ttl_s, max_calls, clock)

    async def put_facts(self, call_sid: str, facts: Facts) -> None:
        self.facts.put(call_sid, dict(facts))

    async def get_facts(self, call_sid: str) -> Facts | None:
        return self.facts.get(call_sid)

    async def claim(self, call_sid: str) -> bool:
        if self.claims.get(call_sid):
            return False
        self.claims.put(call_sid, True)
        return True

    async def put_context(self, call_sid: str, value: bytes) -> None:
        self.contexts.put(call_sid, value[:MAX_VALUE_BYTES])

    async def get_context(self, call_sid: str) -> bytes | None:
        return self.contexts.get(call_sid)

    async def put_note(self, call_sid: str, name: str, value: bytes) -> None:
        self.notes.put(f"{call_sid}:{name}", value[:MAX_VALUE_BYTES])

    async def get_note(self, call_sid: str, name: str) -> bytes | None:
        return self.notes.get(f"{call_sid}:{name}")

    async def close(self) -> None:
        return None


class RedisCallContext:
    """Facts and contexts in Redis (`voiceagent:call:<sid>:{facts,ctxclaim,context}`)."""

    def __init__(self, backend: RedisBackend, local: MemoryCallContext | None = None) -> None:
        self._backend = backend
        self._local = local or MemoryCallContext()
        self._ttl_ms = round(CONTEXT_TTL_S * 1000)

    async def put_facts(self, call_sid: str, facts: Facts) -> None:
        data = orjson.dumps(facts)
        if not await self._backend.put("put_facts", _key(call_sid, "facts"), data, self._ttl_ms):
            await self._local.put_facts(call_sid, facts)

    async def get_facts(self, call_sid: str) -> Facts | None:
        data = await self._backend.get("get_facts", _key(call_sid, "facts"))
        if data is not None:
            try:
                value = orjson.loads(data)
            except orjson.JSONDecodeError:
                return None
            if isinstance(value, dict):
                return {str(k): str(v) for k, v in value.items()}
        return await self._local.get_facts(call_sid)

    async def claim(self, call_sid: str) -> bool:
        key = _key(call_sid, "ctxclaim")
        won = await self._backend.attempt(
            "claim_context", lambda r: r.set(key, b"1", px=self._ttl_ms, nx=True)
        )
        if won is DOWN:
            return await self._local.claim(call_sid)
        return bool(won)

    async def put_context(self, call_sid: str, value: bytes) -> None:
        value = value[:MAX_VALUE_BYTES]
        key = _key(call_sid, "context")
        if not await self._backend.put("put_context", key, value, self._ttl_ms):
            await self._local.put_context(call_sid, value)

    async def get_context(self, call_sid: str) -> bytes | None:
        data = await self._backend.get("get_context", _key(call_sid, "context"))
        return data if data is not None else await self._local.get_context(call_sid)

    async def put_note(self, call_sid: str, name: str, value: bytes) -> None:
        value = value[:MAX_VALUE_BYTES]
        key = _key(call_sid, "note:" + name)
        if not await self._backend.put("put_note", key, value, self._ttl_ms):
            await self._local.put_note(call_sid, name, value)

    async def get_note(self, call_sid: str, name: str) -> bytes | None:
        data = await self._backend.get("get_note", _key(call_sid, "note:" + name))
        return data if data is not None else await self._local.get_note(call_sid, name)

    async def close(self) -> None:
        return None


def _key(call_sid: str, what: str) -> str:
    """`voiceagent:call:<sid>:<what>`; an odd CallSid is hashed, never stored."""
    if not (0 < len(call_sid) <= 64 and call_sid.isascii() and call_sid.isalnum()):
        call_sid = "h" + hashlib.sha256(call_sid.encode(errors="replace")).hexdigest()[:32]
    return f"{KEY_PREFIX}call:{call_sid}:{what}"
