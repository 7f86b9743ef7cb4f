"""The Inworld Realtime session budget: one cap across instances, leases that expire."""

from __future__ import annotations

import asyncio
import uuid

from voiceagent.store.live.realtime_budget import MemoryRealtimeBudget, RedisRealtimeBudget, hold
from voiceagent.store.live.redis_backend import RedisBackend

CLOSED_PORT_URL = "redis://127.0.0.1:1/0"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _budget(url: str, key: str, cap: int = 3, lease_s: float = 60.0) -> RedisRealtimeBudget:
    return RedisRealtimeBudget(RedisBackend.from_url(url), cap, lease_s, key=key, owns=True)


async def test_the_cap_holds_across_two_instances(redis_url: str) -> None:
    """Two instances sharing Redis together grant at most `cap` leases; a release frees one."""
    key = f"voiceagent:test:sessions:{uuid.uuid4().hex}"
    a, b = _budget(redis_url, key), _budget(redis_url, key)
    try:
        granted = [await (a if i % 2 else b).acquire(f"CA{i}") for i in range(5)]
        assert granted == [True, True, True, False, False]
        assert await a.in_use() == 3 and await b.in_use() == 3
        assert await b.acquire("CA0")  # a call that holds a lease keeps it
        await a.release("CA0")  # released by another instance than the one that acquired
        assert await b.acquire("CA3") and not await a.acquire("CA4")
        assert a.last_in_use == 3
    finally:
        await a.close()
        await b.close()


async def test_an_expired_lease_frees_its_slot(redis_url: str) -> None:
    """A lease nobody renews (its instance died) expires, and its slot goes to the next call."""
    key = f"voiceagent:test:sessions:{uuid.uuid4().hex}"
    dead, alive = _budget(redis_url, key, cap=1, lease_s=0.2), _budget(redis_url, key, cap=1)
    try:
        assert await dead.acquire("CAdead")
        assert not await alive.acquire("CAnew")
        await asyncio.sleep(0.3)
        assert await alive.in_use() == 0
        assert await alive.acquire("CAnew")
    finally:
        await dead.close()
        await alive.close()


async def test_renewed_lease_outlives_its_lease_time(redis_url: str) -> None:
    """`hold` renews a lease while its call runs, so it is not taken by another call."""
    key = f"voiceagent:test:sessions:{uuid.uuid4().hex}"
    budget = _budget(redis_url, key, cap=1, lease_s=0.3)
    try:
        assert await budget.acquire("CAlong")
        holder = asyncio.create_task(hold(budget, "CAlong"))
        await asyncio.sleep(0.8)
        assert not await budget.acquire("CAother")
        holder.cancel()
        await budget.release("CAlong")
        assert await budget.acquire("CAother")
    finally:
        await budget.close()


async def test_memory_budget_caps_expires_and_releases() -> None:
    """One instance's budget grants up to its cap; leases expire or are released."""
    clock = Clock()
    budget = MemoryRealtimeBudget(cap=2, lease_s=10, clock=clock)
    assert [await budget.acquire(f"CA{i}") for i in range(3)] == [True, True, False]
    await budget.release("CA0")
    assert await budget.acquire("CA2")
    clock.now += 5
    assert await budget.renew("CA1")
    clock.now += 6  # CA2 expired, CA1 renewed
    assert await budget.in_use() == 1 and budget.last_in_use == 1


async def test_unreachable_redis_falls_back_to_a_local_budget() -> None:
    """With Redis down, leases are granted from this instance's memory with the same cap."""
    budget = _budget(CLOSED_PORT_URL, "voiceagent:test:sessions:down", cap=1)
    try:
        assert await budget.acquire("CA1")
        assert not await budget.acquire("CA2")
        assert await budget.renew("CA1")
        await budget.release("CA1")
        assert await budget.acquire("CA2")
    finally:
        await budget.close()


async def test_a_dial_reservation_becomes_the_calls_lease(redis_url: str) -> None:
    """A dial reserves a slot for as long as the call may ring (its own lease time, longer than
    the budget's), across instances; `rekey` hands it to the CallSid with its expiry, and the
    set outlives the shorter leases taken after it."""
    key = f"voiceagent:test:sessions:{uuid.uuid4().hex}"
    a, b = _budget(redis_url, key, cap=1, lease_s=0.2), _budget(redis_url, key, cap=1, lease_s=0.2)
    try:
        assert await a.acquire("dial-1", lease_s=1.0)
        assert not await b.acquire("dial-2", lease_s=1.0)  # the other instance waits
        await b.rekey("dial-1", "CAone")  # rekeyed from any instance
        await b.rekey("dial-nobody", "CAnobody")  # no lease: nothing happens
        await asyncio.sleep(0.3)  # past the budget's lease time, not the reservation's
        assert not await b.acquire("dial-2", lease_s=1.0) and await b.in_use() == 1
        assert await a.acquire("CAone")  # /voice takes the call's own lease: it holds one
        await a.release("CAone")
        assert await b.acquire("dial-2", lease_s=1.0) and await a.in_use() == 1
    finally:
        await a.close()
        await b.close()


async def test_memory_budget_rekeys_with_the_reservations_expiry() -> None:
    clock = Clock()
    budget = MemoryRealtimeBudget(cap=1, lease_s=10, clock=clock)
    assert await budget.acquire("dial-1", lease_s=100)
    await budget.rekey("dial-1", "CA1")
    clock.now += 50  # past the budget's lease time: the reservation's still holds
    assert budget.holds("CA1") and not budget.holds("dial-1")
    assert not await budget.acquire("CA2")
    clock.now += 51
    assert await budget.acquire("CA2")
