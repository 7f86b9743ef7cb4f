"""Per-call state another instance may need: the call's plan and how its stream ended.

Behind a load balancer, `/voice`, the phone socket and the `<Connect action>` callback of one
call can land on different instances; this store is how they agree. Everything here has a TTL
and a size bound, in memory and in Redis:

- the plan `/voice` answered with (kept an hour, a failover leg needs it): each distinct plan
  is stored once, content-addressed by a hash of its JSON; per call only that hash;
- the outcome of the call's stream (kept ten minutes; the callback comes within seconds), with
  the conversation carried into a failover or reconnect leg, capped to its newest messages.

`MemoryCallState` serves one instance. `RedisCallState` shares the state through Redis and, when
Redis does not answer, serves from its own `MemoryCallState` (see `store/shared.py`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final, Protocol

import orjson
from pydantic import ValidationError
from redis.asyncio import Redis

from voiceagent.config import CallPlan
from voiceagent.logging import get_logger
from voiceagent.session.call import EndReason
from voiceagent.store.live.checkpoint import (
    CHECKPOINT_TTL_S,
    NEWER_CHECKPOINT_SCRIPT,
    Checkpoint,
    dump_checkpoint,
    load_checkpoint,
)
from voiceagent.store.live.redis_backend import DOWN, KEY_PREFIX, RedisBackend, text
from voiceagent.store.live.ttl_book import TtlBook

log = get_logger("voiceagent.store")

PLAN_TTL_S: Final = 3600.0
OUTCOME_TTL_S: Final = 600.0
HISTORY_MAX_MESSAGES: Final = 40
HISTORY_MAX_CHARS: Final = 16_000


Message = dict[str, Any]
"""One chat-completions message: role and content, maybe `tool_calls` / `tool_call_id`."""


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """How a call's phone socket ended, kept briefly for the `<Connect action>` callback.

    `history` is the conversation a failover or reconnect leg carries on with (chat-completions
    messages, tool calls included); `transfer` names the transfer destination a tool chose;
    `event_held`: the leg wrote the call's `call.ended` as provisional, held for a failover
    leg (a callback that ends the call instead releases it: `Services.call_ends_here`).
    """

    reason: EndReason
    upstream_failure: str | None
    mode: str
    history: tuple[Message, ...] = ()
    transfer: str | None = None
    event_held: bool = False

    def bounded(self) -> CallOutcome:
        """This outcome with its history capped: the newest messages, at most
        HISTORY_MAX_MESSAGES of them and about HISTORY_MAX_CHARS of JSON (a newest message
        longer than that keeps the end of its text). Callers re-pair tool calls and results
        (`tools.history.consistent`) before a model sees the history."""
        sizes = [len(_json(m)) for m in self.history]
        if len(sizes) <= HISTORY_MAX_MESSAGES and sum(sizes) <= HISTORY_MAX_CHARS:
            return self
        kept: list[Message] = []
        room = HISTORY_MAX_CHARS
        for message, size in list(zip(self.history, sizes, strict=True))[::-1]:
            if len(kept) == HISTORY_MAX_MESSAGES:
                break
            if size > room:
                content = message.get("content")
                if not kept and isinstance(content, str):
                    kept.append({**message, "content": content[len(content) - room // 2 :]})
                break
            kept.append(message)
            room -= size
        return replace(self, history=tuple(reversed(kept)))


def _json(value: object) -> bytes:
    return orjson.dumps(value)  # compact UTF-8, like json.dumps(ensure_ascii=False), 20x faster


def plan_digest(plan: CallPlan) -> tuple[str, bytes]:
    """The plan's content address and its JSON (the same plan always gets the same address)."""
    blob = plan.model_dump_json().encode()
    return hashlib.sha256(blob).hexdigest()[:24], blob


def dump_outcome(outcome: CallOutcome) -> bytes:
    """Compact JSON of an outcome (short keys)."""
    return _json(
        {
            "r": outcome.reason.value,
            "u": outcome.upstream_failure,
            "m": outcome.mode,
            "t": outcome.transfer,
            "h": list(outcome.history),
            "e": outcome.event_held,
        }
    )


def load_outcome(data: bytes) -> CallOutcome | None:
    """The outcome `dump_outcome` wrote; None (logged) if the stored value is unreadable."""
    try:
        fields = orjson.loads(data)
        history = tuple(fields["h"])
        if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in history):
            raise TypeError("history messages need a role")
        return CallOutcome(
            reason=EndReason(fields["r"]),
            upstream_failure=fields["u"],
            mode=str(fields["m"]),
            history=history,
            transfer=fields.get("t"),
            event_held=fields.get("e") is True,
        )
    except (ValueError, KeyError, TypeError) as exc:
        log.error("call_outcome_unreadable", error=type(exc).__name__)
        return None


class CallStateStore(Protocol):
    """What `/voice`, the modes and `/voice/action` share about a call."""

    async def put_plan(self, call_sid: str, plan: CallPlan) -> None:
        """Keep the plan `/voice` answered with (or a failover leg's), for PLAN_TTL_S."""
        ...

    async def get_plan(self, call_sid: str) -> CallPlan | None:
        """The call's plan; None if unknown or expired."""
        ...

    async def put_outcome(self, call_sid: str, outcome: CallOutcome) -> None:
        """Keep how the stream ended (history capped), for OUTCOME_TTL_S; replaces any."""
        ...

    async def take_outcome(self, call_sid: str) -> CallOutcome | None:
        """The outcome, removed (only one taker gets it); None if unknown or expired."""
        ...

    async def put_checkpoint(self, call_sid: str, checkpoint: Checkpoint) -> None:
        """Keep a relay call's live conversation (history capped) for CHECKPOINT_TTL_S, unless
        a later leg (more `reconnects`) wrote one: a half-open old leg never overwrites it."""
        ...

    async def get_checkpoint(self, call_sid: str) -> Checkpoint | None:
        """The call's checkpoint; None if unknown or expired."""
        ...

    async def drop_checkpoint(self, call_sid: str) -> None:
        """Forget the checkpoint (the session ended for good, or a new leg took over)."""
        ...

    async def close(self) -> None: ...


class MemoryCallState:
    """One instance's call state: per call a plan address and an outcome, plans stored once."""

    def __init__(
        self,
        *,
        plan_ttl_s: float = PLAN_TTL_S,
        outcome_ttl_s: float = OUTCOME_TTL_S,
        max_calls: int = 100_000,
        max_plans: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.calls: TtlBook[str] = TtlBook(plan_ttl_s, max_calls, clock)
        self.plans: TtlBook[CallPlan] = TtlBook(plan_ttl_s, max_plans, clock)
        self.outcomes: TtlBook[CallOutcome] = TtlBook(outcome_ttl_s, max_calls, clock)
        self.checkpoints: TtlBook[Checkpoint] = TtlBook(CHECKPOINT_TTL_S, max_calls, clock)

    async def put_plan(self, call_sid: str, plan: CallPlan) -> None:
        digest, _ = plan_digest(plan)
        self.plans.put(digest, self.plans.get(digest) or plan)  # refreshes its TTL
        self.calls.put(call_sid, digest)

    async def get_plan(self, call_sid: str) -> CallPlan | None:
        digest = self.calls.get(call_sid)
        return None if digest is None else self.plans.get(digest)

    async def put_outcome(self, call_sid: str, outcome: CallOutcome) -> None:
        self.outcomes.put(call_sid, outcome.bounded())

    async def take_outcome(self, call_sid: str) -> CallOutcome | None:
        return self.outcomes.take(call_sid)

    async def put_checkpoint(self, call_sid: str, checkpoint: Checkpoint) -> None:
        current = self.checkpoints.get(call_sid)
        if current is None or current.reconnects <= checkpoint.reconnects:
            self.checkpoints.put(call_sid, _bounded(checkpoint))

    async def get_checkpoint(self, call_sid: str) -> Checkpoint | None:
        return self.checkpoints.get(call_sid)

    async def drop_checkpoint(self, call_sid: str) -> None:
        self.checkpoints.take(call_sid)

    async def close(self) -> None:
        return None


class RedisCallState:
    """Call state in Redis, shared by every instance; local memory while Redis is down.

    Keys: `voiceagent:plan:<digest>` (plan JSON), `voiceagent:call:<sid>:plan` (digest),
    `voiceagent:call:<sid>:outcome` (compact JSON). Parsed plans are cached by digest.
    """

    def __init__(
        self, backend: RedisBackend, local: MemoryCallState | None = None, *, owns: bool = False
    ) -> None:
        self._backend = backend
        self._local = local or MemoryCallState()
        self._owns = owns
        self._plan_ms = round(PLAN_TTL_S * 1000)
        self._outcome_ms = round(OUTCOME_TTL_S * 1000)
        self._newer = backend.redis.register_script(NEWER_CHECKPOINT_SCRIPT)
        self._parsed: TtlBook[CallPlan] = TtlBook(PLAN_TTL_S, 1024)

    async def put_plan(self, call_sid: str, plan: CallPlan) -> None:
        digest, blob = plan_digest(plan)
        plan_key = f"{KEY_PREFIX}plan:{digest}"

        async def store(redis: Redis) -> None:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.set(_call_key(call_sid, "plan"), digest, px=self._plan_ms)
                pipe.pexpire(plan_key, self._plan_ms)  # keeps the plan as long as its calls
                _, known = await pipe.execute()
            if not known:
                await redis.set(plan_key, blob, px=self._plan_ms)

        if await self._backend.attempt("put_plan", store) is DOWN:
            await self._local.put_plan(call_sid, plan)

    async def get_plan(self, call_sid: str) -> CallPlan | None:
        found = await self._backend.attempt("get_plan", lambda r: self._fetch_plan(r, call_sid))
        if found is DOWN or found is None:
            return await self._local.get_plan(call_sid)
        return found

    async def _fetch_plan(self, redis: Redis, call_sid: str) -> CallPlan | None:
        digest = text(await redis.get(_call_key(call_sid, "plan")))
        if digest is None:
            return None
        plan = self._parsed.get(digest)
        if plan is not None:
            return plan
        blob = await redis.get(f"{KEY_PREFIX}plan:{digest}")
        if blob is None:
            return None
        try:
            plan = CallPlan.model_validate_json(blob)
        except ValidationError as exc:  # written by another version: answer as if expired
            log.error("call_plan_unreadable", errors=exc.error_count())
            return None
        self._parsed.put(digest, plan)
        return plan

    async def put_outcome(self, call_sid: str, outcome: CallOutcome) -> None:
        outcome = outcome.bounded()
        data = dump_outcome(outcome)
        key = _call_key(call_sid, "outcome")
        if not await self._backend.put("put_outcome", key, data, self._outcome_ms):
            await self._local.put_outcome(call_sid, outcome)

    async def take_outcome(self, call_sid: str) -> CallOutcome | None:
        key = _call_key(call_sid, "outcome")
        data = await self._backend.attempt("take_outcome", lambda r: r.getdel(key))
        if isinstance(data, bytes):
            return load_outcome(data)
        return await self._local.take_outcome(call_sid)  # put while Redis was down

    async def put_checkpoint(self, call_sid: str, checkpoint: Checkpoint) -> None:
        checkpoint = _bounded(checkpoint)
        data, key = dump_checkpoint(checkpoint), _call_key(call_sid, "live")
        args: list[bytes | int] = [data, checkpoint.reconnects, round(CHECKPOINT_TTL_S * 1000)]
        if await self._backend.attempt(
            "put_checkpoint", lambda _: self._newer(keys=[key], args=args)
        ) is DOWN:  # fmt: skip
            await self._local.put_checkpoint(call_sid, checkpoint)

    async def get_checkpoint(self, call_sid: str) -> Checkpoint | None:
        key = _call_key(call_sid, "live")
        data = await self._backend.attempt("get_checkpoint", lambda r: r.get(key))
        if isinstance(data, bytes):
            return load_checkpoint(data)
        return await self._local.get_checkpoint(call_sid)

    async def drop_checkpoint(self, call_sid: str) -> None:
        key = _call_key(call_sid, "live")
        await self._backend.attempt("drop_checkpoint", lambda r: r.delete(key))
        await self._local.drop_checkpoint(call_sid)

    async def close(self) -> None:
        if self._owns:
            await self._backend.close()


def _bounded(checkpoint: Checkpoint) -> Checkpoint:
    """The checkpoint with its history capped like an outcome's."""
    outcome = CallOutcome(EndReason.CALLER_DISCONNECTED, None, "", checkpoint.history).bounded()
    return replace(checkpoint, history=outcome.history)


def _call_key(call_sid: str, what: str) -> str:
    """`voiceagent:call:<sid>:<what>`; an oversized or odd CallSid is hashed, never stored."""
    if not (0 < len(call_sid) <= 64 and call_sid.isascii() and call_sid.isalnum()):
        call_sid = "h" + hashlib.sha256(call_sid.encode(errors="replace")).hexdigest()[:32]
    return f"{KEY_PREFIX}call:{call_sid}:{what}"
