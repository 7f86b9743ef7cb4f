"""Shared call state: plans and outcomes seen by every instance, bounded, and kept in memory
when Redis does not answer."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from tests.store.tcp_gate import TcpGate
from voiceagent.config import CallPlan, load_config
from voiceagent.session.call import EndReason
from voiceagent.store.live.call_state import (
    HISTORY_MAX_CHARS,
    HISTORY_MAX_MESSAGES,
    CallOutcome,
    MemoryCallState,
    RedisCallState,
    plan_digest,
)
from voiceagent.store.live.redis_backend import BackendHealth, RedisBackend

SAMPLE = Path(__file__).parents[2] / "config" / "voiceagent.yaml"
CLOSED_PORT_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _plan(call_sid: str) -> CallPlan:
    config = load_config(SAMPLE)
    number = next(iter(config.numbers))
    plan = config.plan_for(number, call_sid)
    assert plan is not None
    return plan


def _sid() -> str:
    return "CA" + uuid.uuid4().hex


def _outcome(**fields: object) -> CallOutcome:
    base: dict[str, object] = {
        "reason": EndReason.UPSTREAM_FAILED,
        "upstream_failure": "capacity",
        "mode": "realtime-passthrough",
        "history": ({"role": "user", "content": "Remember banana."},),
        "transfer": "sales",
        "event_held": True,
    }
    return CallOutcome(**(base | fields))  # type: ignore[arg-type]


async def test_two_instances_sharing_redis_see_each_others_plans_and_outcomes(
    redis_url: str,
) -> None:
    """A plan and an outcome put on instance A are read on instance B; an outcome is taken once."""
    a, b = (
        RedisCallState(RedisBackend.from_url(redis_url), owns=True),
        RedisCallState(RedisBackend.from_url(redis_url), owns=True),
    )
    try:
        sid = _sid()
        plan = _plan(sid)
        await a.put_plan(sid, plan)
        assert await b.get_plan(sid) == plan
        assert await b.get_plan(_sid()) is None
        outcome = _outcome()
        await b.put_outcome(sid, outcome)
        assert await a.take_outcome(sid) == outcome
        assert await b.take_outcome(sid) is None  # taken: nobody gets it twice
    finally:
        await a.close()
        await b.close()


async def test_each_distinct_plan_is_stored_once_and_per_call_only_its_address(
    redis_url: str,
) -> None:
    """Many calls with the same plan cost one plan value plus a short digest per call in Redis."""
    backend = RedisBackend.from_url(redis_url)
    store = RedisCallState(backend, owns=True)
    try:
        plan = _plan("CAsame")
        sids = [_sid() for _ in range(20)]
        for sid in sids:
            await store.put_plan(sid, plan)
        digest, blob = plan_digest(plan)
        redis: Redis = backend.redis
        assert await redis.get(f"voiceagent:plan:{digest}") == blob
        per_call = [await redis.get(f"voiceagent:call:{sid}:plan") for sid in sids]
        assert set(per_call) == {digest.encode()}
        assert 0 < await redis.pttl(f"voiceagent:call:{sids[0]}:plan") <= 3600_000
        assert [await store.get_plan(sid) for sid in sids] == [plan] * len(sids)
    finally:
        await store.close()


async def test_memory_state_expires_and_is_bounded() -> None:
    """In memory, plans and outcomes expire after their TTLs and the number of calls is capped."""
    clock = Clock()
    store = MemoryCallState(plan_ttl_s=60, outcome_ttl_s=10, max_calls=3, clock=clock)
    plan = _plan("CA1")
    for i in range(5):
        await store.put_plan(f"CA{i}", plan)
    assert len(store.calls) == 3 and len(store.plans) == 1  # oldest calls evicted, plan once
    assert await store.get_plan("CA0") is None and await store.get_plan("CA4") == plan
    await store.put_outcome("CA4", _outcome())
    clock.now += 11
    assert await store.take_outcome("CA4") is None
    assert await store.get_plan("CA4") == plan
    clock.now += 50
    assert await store.get_plan("CA4") is None


async def test_outcome_history_is_capped_to_its_newest_messages(redis_url: str) -> None:
    """A long conversation is stored with only its newest messages, within the size cap."""
    history = tuple(
        {"role": "user" if i % 2 else "assistant", "content": f"{i}:" + "x" * 900}
        for i in range(100)
    )
    store = RedisCallState(RedisBackend.from_url(redis_url), owns=True)
    try:
        sid = _sid()
        await store.put_outcome(sid, _outcome(history=history))
        taken = await store.take_outcome(sid)
    finally:
        await store.close()
    assert taken is not None
    assert 0 < len(taken.history) <= HISTORY_MAX_MESSAGES
    assert sum(len(m["content"]) for m in taken.history) <= HISTORY_MAX_CHARS
    assert taken.history == history[-len(taken.history) :]


def test_a_single_huge_message_keeps_its_end() -> None:
    """A newest message longer than the cap is kept with the end of its text, within the cap."""
    outcome = _outcome(history=({"role": "user", "content": "a" * 50_000 + "END"},))
    [message] = outcome.bounded().history
    assert message["content"].endswith("END") and len(message["content"]) <= HISTORY_MAX_CHARS


async def test_unreachable_redis_degrades_to_memory_logged_and_counted() -> None:
    """With Redis down, plans and outcomes are kept in local memory, and the outage is counted
    once and reported through the health callback, never raised into the caller."""
    changes: list[bool] = []
    health = BackendHealth(on_change=changes.append)
    backend = RedisBackend(RedisBackend.from_url(CLOSED_PORT_URL).redis, health)
    store = RedisCallState(backend, owns=True)
    try:
        sid = _sid()
        plan = _plan(sid)
        await store.put_plan(sid, plan)
        assert await store.get_plan(sid) == plan
        await store.put_outcome(sid, _outcome())
        assert await store.take_outcome(sid) == _outcome()
        assert await store.take_outcome(sid) is None
    finally:
        await store.close()
    assert (health.up, health.outages, changes) == (False, 1, [False])
    assert health.fallbacks >= 5


async def test_state_put_while_redis_was_down_is_still_found_after_it_returns(
    redis_url: str,
) -> None:
    """An outcome kept locally during an outage is taken after Redis answers again."""
    clock = Clock()
    health = BackendHealth(retry_s=5, clock=clock)
    down = RedisBackend(RedisBackend.from_url(CLOSED_PORT_URL).redis, health)
    local = MemoryCallState()
    store = RedisCallState(down, local)
    sid = _sid()
    await store.put_outcome(sid, _outcome())
    assert not health.up
    up = RedisBackend(RedisBackend.from_url(redis_url).redis, health)
    again = RedisCallState(up, local, owns=True)  # same process, Redis reachable again
    try:
        clock.now += 6  # past the retry pause
        assert await again.take_outcome(sid) == _outcome()
        assert health.up
    finally:
        await again.close()
        await down.close()


async def test_tool_calls_in_the_history_survive_the_round_trip(redis_url: str) -> None:
    """Assistant tool calls and tool results in the carried conversation come back as they were."""
    history = (
        {"role": "user", "content": "Put me through to sales."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "transfer", "arguments": '{"to": "sales"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "transferring"},
    )
    store = RedisCallState(RedisBackend.from_url(redis_url), owns=True)
    try:
        sid = _sid()
        await store.put_outcome(sid, _outcome(history=history))
        taken = await store.take_outcome(sid)
    finally:
        await store.close()
    assert taken is not None and taken.history == history and taken.transfer == "sales"


@pytest.mark.parametrize("sid", ["", "CA" + "9" * 5000, "CA/../x", "CA\x00x"])
async def test_odd_call_sids_never_become_raw_keys(redis_url: str, sid: str) -> None:
    """An empty, huge or odd CallSid still works, stored under a fixed-size hashed key."""
    backend = RedisBackend.from_url(redis_url)
    store = RedisCallState(backend, owns=True)
    try:
        await store.put_outcome(sid, _outcome())
        assert await store.take_outcome(sid) == _outcome()
    finally:
        await store.close()


async def test_redis_lost_mid_run_degrades_then_recovers(redis_url: str) -> None:
    """Redis lost mid-run: calls keep their state in memory (one outage logged and counted);
    once Redis answers again, state is shared through it again."""
    url = urlsplit(redis_url)
    gate = TcpGate(url.hostname or "127.0.0.1", url.port or 6379)
    await gate.open()
    health = BackendHealth(retry_s=0.05)
    backend = RedisBackend(RedisBackend.from_url(f"redis://127.0.0.1:{gate.port}/0").redis, health)
    store = RedisCallState(backend, owns=True)
    other = RedisCallState(RedisBackend.from_url(redis_url), owns=True)
    try:
        before, during, after = _sid(), _sid(), _sid()
        await store.put_outcome(before, _outcome())
        await gate.close()
        with capture_logs() as logs:
            await store.put_outcome(during, _outcome())
            assert await store.take_outcome(during) == _outcome()
        assert [e["event"] for e in logs] == ["shared_store_down"]
        await gate.open()
        await asyncio.sleep(0.1)  # past the retry pause
        await store.put_outcome(after, _outcome())
        assert health.up and health.outages == 1
        assert await other.take_outcome(after) == _outcome()
        assert await other.take_outcome(before) == _outcome()
    finally:
        await store.close()
        await other.close()
        await gate.close()


@pytest.mark.parametrize("shared", [False, True], ids=["memory", "redis"])
async def test_an_older_leg_never_overwrites_a_reconnected_legs_checkpoint(
    shared: bool, redis_url: str
) -> None:
    """Checkpoints are shared by instances; one written by an earlier leg (fewer reconnects,
    e.g. a half-open socket) after a later leg's is ignored; `drop` forgets it."""
    from voiceagent.store.live.checkpoint import Checkpoint

    store: MemoryCallState | RedisCallState = (
        RedisCallState(RedisBackend.from_url(redis_url), owns=True) if shared
        else MemoryCallState()
    )  # fmt: skip
    try:
        sid = _sid()
        newer = Checkpoint("1|", ({"role": "user", "content": "Hi."},), ("ab",), None, 1, 1)
        await store.put_checkpoint(sid, newer)
        await store.put_checkpoint(sid, Checkpoint("1|", (), (), None, 0, 0))
        assert await store.get_checkpoint(sid) == newer
        later = Checkpoint("1|", newer.history, ("ab", "cd"), "cd", 1, 2)
        await store.put_checkpoint(sid, later)
        assert await store.get_checkpoint(sid) == later
        await store.drop_checkpoint(sid)
        assert await store.get_checkpoint(sid) is None
    finally:
        await store.close()
