"""The outbound store and the CPS pacer on the real Redis: two instances share a call, its
number's count, and one stream of CPS slots."""

from __future__ import annotations

import asyncio
import time
import uuid

from voiceagent.outbound.pacing import RedisPacer
from voiceagent.store.live.outbound_state import OutboundCall, RedisOutboundStore
from voiceagent.store.live.redis_backend import RedisBackend


async def test_two_instances_share_outbound_calls(redis_url: str) -> None:
    """A call put by one instance is read and ended by the other; the number's active count
    follows on both."""
    a, b = RedisBackend.from_url(redis_url), RedisBackend.from_url(redis_url)
    number = "+1800" + str(uuid.uuid4().int)[:7]
    sid = "CA" + uuid.uuid4().hex
    try:
        one, two = RedisOutboundStore(a), RedisOutboundStore(b)
        await one.put(OutboundCall(sid, number, "+14155550001", {"name": "Ana"}))
        assert await two.active(number) == 1
        updated = await two.update(sid, status="busy", answered_by=None)
        assert updated is not None and updated[0].variables == {"name": "Ana"} and not updated[1]
        again = await one.update(sid, status="in-progress")  # late: a final status stays
        assert again is not None and again[0].status == "busy" and again[1]
        assert await one.active(number) == 0
        assert (await one.get(sid)).status == "busy"  # type: ignore[union-attr]
    finally:
        await a.close()
        await b.close()


async def test_two_instances_share_the_cps_slots(redis_url: str) -> None:
    """Six slots taken by two instances at 20 CPS span at least 250 ms together."""
    a, b = RedisBackend.from_url(redis_url), RedisBackend.from_url(redis_url)
    key = "voiceagent:test-cps:" + uuid.uuid4().hex
    try:
        pacers = [RedisPacer(a, 20.0, key=key), RedisPacer(b, 20.0, key=key)]
        started = time.monotonic()
        await asyncio.gather(*(pacers[i % 2].slot() for i in range(6)))
        assert time.monotonic() - started >= 0.24
    finally:
        await a.close()
        await b.close()
