"""The store factory: memory for one instance, Redis for several, chosen by REDIS_URL."""

from __future__ import annotations

import uuid

from voiceagent.session.call import EndReason
from voiceagent.settings import Settings
from voiceagent.store.live.call_state import CallOutcome, MemoryCallState
from voiceagent.store.live.clips import MemoryClipStore
from voiceagent.store.live.factory import make_recording_sink, make_shared_stores
from voiceagent.store.live.realtime_budget import MemoryRealtimeBudget


async def test_without_redis_every_store_is_in_memory() -> None:
    """With REDIS_URL empty the stores live in process memory and report no shared health."""
    stores = make_shared_stores(Settings(redis_url=""))
    assert isinstance(stores.call_state, MemoryCallState)
    assert isinstance(stores.clips, MemoryClipStore)
    assert isinstance(stores.budget, MemoryRealtimeBudget) and stores.budget.cap == 20
    assert stores.health is None
    await stores.close()
    assert make_recording_sink(Settings(database_url="")) is None


async def test_two_apps_with_one_redis_url_share_call_state(redis_url: str) -> None:
    """Stores built from the same REDIS_URL by two apps hand each other a call's outcome."""
    a, b = (
        make_shared_stores(Settings(redis_url=redis_url)),
        make_shared_stores(Settings(redis_url=redis_url)),
    )
    try:
        sid = "CA" + uuid.uuid4().hex
        outcome = CallOutcome(EndReason.UPSTREAM_FAILED, "dropped", "realtime-passthrough")
        await a.call_state.put_outcome(sid, outcome)
        assert await b.call_state.take_outcome(sid) == outcome
        assert a.health is not None and a.health.up
    finally:
        await a.close()
        await b.close()
