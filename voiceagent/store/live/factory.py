"""The shared stores of one app, chosen from Settings: Redis when `REDIS_URL` is set.

`make_shared_stores(settings)` builds the call state store, the clip store and the Realtime
session budget over one Redis client (`RedisBackend`), or all in memory for a single instance.
The app closes them with `await stores.close()`; metrics read `stores.health` (None without
Redis) and `stores.budget.last_in_use`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voiceagent.settings import Settings
from voiceagent.store.live.call_context import CallContextStore, MemoryCallContext, RedisCallContext
from voiceagent.store.live.call_state import CallStateStore, MemoryCallState, RedisCallState
from voiceagent.store.live.clips import ClipStore, make_clip_store
from voiceagent.store.live.realtime_budget import (
    DEFAULT_BUDGET,
    DEFAULT_LEASE_S,
    MemoryRealtimeBudget,
    RealtimeBudget,
    RedisRealtimeBudget,
)
from voiceagent.store.live.redis_backend import BackendHealth, RedisBackend
from voiceagent.store.records.sink import RecordingSink

DEFAULT_RECORDS_BUFFER = 10_000


@dataclass
class SharedStores:
    """What every instance of a deployment shares about calls."""

    call_state: CallStateStore
    clips: ClipStore
    budget: RealtimeBudget
    backend: RedisBackend | None = None
    context: CallContextStore = field(default_factory=MemoryCallContext)

    @property
    def health(self) -> BackendHealth | None:
        """Up/down, outages and fallbacks of the shared Redis (None: no Redis configured)."""
        return None if self.backend is None else self.backend.health

    async def close(self) -> None:
        await self.clips.close()
        await self.call_state.close()
        await self.budget.close()
        if self.backend is not None:
            await self.backend.close()


def budget_settings(settings: Settings) -> tuple[int, float]:
    """`REALTIME_SESSION_BUDGET` and `REALTIME_SESSION_LEASE_SECONDS` (their defaults while
    Settings does not declare them)."""
    cap = getattr(settings, "realtime_session_budget", DEFAULT_BUDGET)
    lease_s = getattr(settings, "realtime_session_lease_seconds", DEFAULT_LEASE_S)
    return int(cap), float(lease_s)


def make_recording_sink(settings: Settings) -> RecordingSink | None:
    """The records writer for `DATABASE_URL` (None when empty), buffering `RECORDS_BUFFER`
    records through a database outage."""
    if not settings.database_url:
        return None
    buffer = int(getattr(settings, "records_buffer", DEFAULT_RECORDS_BUFFER))
    return RecordingSink(settings.database_url, max_queue=buffer)


def make_shared_stores(settings: Settings) -> SharedStores:
    """Redis-backed stores when `REDIS_URL` is set (one client for all), else memory."""
    cap, lease_s = budget_settings(settings)
    if not settings.redis_url:
        return SharedStores(
            MemoryCallState(), make_clip_store(settings), MemoryRealtimeBudget(cap, lease_s)
        )
    backend = RedisBackend.from_url(settings.redis_url)
    return SharedStores(
        call_state=RedisCallState(backend),
        clips=make_clip_store(settings, backend),
        budget=RedisRealtimeBudget(backend, cap, lease_s),
        backend=backend,
        context=RedisCallContext(backend),
    )
