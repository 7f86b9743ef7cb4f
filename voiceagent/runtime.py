"""What one app shares among its calls: config, HTTP client, upstreams, shared stores, sinks,
drain state.

Built by `create_app`; never module-level. Modes receive it as `Services`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from voiceagent.config import CallPlan, Config, load_config
from voiceagent.config_filler import FillerClips
from voiceagent.errors import ConfigError
from voiceagent.logging import get_logger
from voiceagent.modes.registry import ModeRegistry
from voiceagent.session.call import CallSession, CallSink, EndReason, NullSink
from voiceagent.settings import Settings
from voiceagent.store.live.call_state import CallOutcome
from voiceagent.store.live.clips import ClipStore
from voiceagent.store.live.factory import SharedStores, make_shared_stores
from voiceagent.store.live.realtime_budget import RealtimeBudget
from voiceagent.tools.http_runner import HttpToolRunner
from voiceagent.transport.upstream import RealtimeConnector, RouterClient
from voiceagent.webhooks.context import apply_context
from voiceagent.webhooks.events import (
    call_ended_payload,
    leg_may_follow,
    outbox_row,
    placeholder_row,
)

if TYPE_CHECKING:
    from voiceagent.metrics import Metrics
    from voiceagent.store.records.sink import RecordingSink
    from voiceagent.webhooks.context_fetch import CallContexts
    from voiceagent.webhooks.recordings import Recordings

log = get_logger("voiceagent.runtime")


class ConfigHolder:
    """The current per-number config and the filler clips it names (read at each load); a
    reload swaps them for new calls only."""

    def __init__(self, config: Config) -> None:
        self.current = config
        self.fillers = FillerClips.of(config)
        self.version = 1

    def replace(self, config: Config) -> None:
        """Swap in `config` (ConfigError, and nothing changes, if a filler cannot be read)."""
        self.fillers = FillerClips.of(config)
        self.current = config
        self.version += 1

    def reload(self, path: Path) -> int:
        """Re-read the YAML (SIGHUP, `POST /admin/reload`); ConfigError leaves the config as is."""
        try:
            self.replace(load_config(path))
        except ConfigError as exc:
            log.error("config_reload_failed", path=str(path), error=str(exc))
            raise
        log.info("config_reloaded", path=str(path), version=self.version)
        return self.version


class ActiveCalls:
    """The calls in flight, for graceful drain and the active-calls gauge, and the phone
    sockets not yet proven to be calls (`pending`: upgraded, stream token not checked yet)."""

    def __init__(self) -> None:
        self.draining = False
        self.pending = 0
        self._calls: dict[asyncio.Task[Any], str] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    def add(self, task: asyncio.Task[Any], mode: str) -> None:
        self._calls[task] = mode
        self._idle.clear()

    def discard(self, task: asyncio.Task[Any]) -> None:
        self._calls.pop(task, None)
        if not self._calls:
            self._idle.set()

    def count(self, mode: str | None = None) -> int:
        return sum(1 for m in self._calls.values() if mode is None or m == mode)

    async def wait_idle(self, within_s: float) -> bool:
        """Wait until no call is in flight; False if `within_s` seconds passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), within_s)
        except TimeoutError:
            return False
        return True

    def cancel_all(self) -> int:
        for task in self._calls:
            task.cancel()
        return len(self._calls)


def memory_stores() -> SharedStores:
    """Shared stores for one instance (tests, no `REDIS_URL`)."""
    return make_shared_stores(Settings())


@dataclass
class Services:
    """Everything a mode may use; one instance per app.

    Per-call state another request of the call may need (the plan `/voice` gave it, how its
    stream ended, the conversation a new leg carries on) lives in `stores.call_state`: Redis
    when `REDIS_URL` is set, so any instance can serve any request of a call."""

    settings: Settings
    config: ConfigHolder
    http: aiohttp.ClientSession
    realtime: RealtimeConnector
    router: RouterClient
    modes: ModeRegistry
    stores: SharedStores = field(default_factory=memory_stores)
    sink: CallSink = field(default_factory=NullSink)
    calls: ActiveCalls = field(default_factory=ActiveCalls)
    metrics: Metrics | None = None
    tool_runner: HttpToolRunner | None = None  # made on a number's first HTTP tool call
    contexts: CallContexts | None = None
    recordings: Recordings | None = None
    records: RecordingSink | None = None  # the records database's writer (DATABASE_URL)

    @property
    def clips(self) -> ClipStore:
        return self.stores.clips

    @property
    def budget(self) -> RealtimeBudget:
        """The Inworld Realtime session budget shared by all instances."""
        return self.stores.budget

    async def remember_plan(self, call_sid: str, plan: CallPlan) -> None:
        """`/voice` answered `call_sid` with `plan`: its stream and callback will use it."""
        await self.stores.call_state.put_plan(call_sid, plan)

    async def plan_for_call(self, call_sid: str, number: str) -> CallPlan | None:
        """The call's plan, for its stream and its `<Connect action>` callback alike: the one
        `/voice` answered with (so calls in flight keep their arm and agent across reloads,
        on any instance); else (it expired) the current config's plan for `number`."""
        plan = await self.stores.call_state.get_plan(call_sid)
        if plan is None or plan.number != number:
            plan = self.config.current.plan_for(number, call_sid)
        if plan is None or self.contexts is None:
            return None if plan is None else apply_context(plan, None)
        return await self.contexts.settle(plan, call_sid)  # the call's context applied

    async def finish_call(self, call: CallSession, plan: CallPlan | None = None) -> None:
        """Record the outcome for `/voice/action` (any instance) and hand the call to the sink,
        with its `call.ended` event when the plan has a call-events hook: provisional (held
        for WEBHOOK_FAILOVER_HOLD_SECONDS, webhooks/events.py) when a failover leg may follow,
        whose own event then replaces it."""
        held = False
        if plan is not None and plan.webhooks.call_events is not None:
            facts = await self.stores.context.get_facts(call.call_sid) or {}
            recording = None
            if self.recordings is not None and plan.recording.enabled:
                recording = await self.recordings.recording_of(call.call_sid)
            payload = call_ended_payload(call, plan, facts, recording)
            held = leg_may_follow(call, plan)
            hold_s = self.settings.webhook_failover_hold_seconds if held else 0.0
            call.events.append(outbox_row(payload, plan.webhooks.call_events.url, hold_s=hold_s))
        outcome = CallOutcome(
            reason=call.end_reason or EndReason.INTERNAL_ERROR,
            upstream_failure=call.upstream_failure,
            mode=call.mode,
            history=tuple(call.history.messages()),
            transfer=call.transfer,
            event_held=held,
        )
        await self.stores.call_state.put_outcome(call.call_sid, outcome)
        self.sink.call_ended(call)

    def call_ends_here(self, call_sid: str, outcome: CallOutcome | None) -> None:
        """A `<Connect action>` callback ends the call without another leg: the `call.ended`
        its last leg held for a failover leg (`outcome.event_held`) is due at once."""
        if outcome is not None and outcome.event_held and self.records is not None:
            now = datetime.now(UTC)
            self.records.event_timing(call_sid, placeholder_row(call_sid, now, now))
            log.info("call_event_released", call_sid=call_sid)

    async def take_outcome(self, call_sid: str) -> CallOutcome | None:
        """How the call's last stream ended (once: the callback consumes it)."""
        return await self.stores.call_state.take_outcome(call_sid)

    async def keep_outcome(self, call_sid: str, outcome: CallOutcome) -> None:
        """Put an outcome back for the next leg (a failover leg restores its history)."""
        await self.stores.call_state.put_outcome(call_sid, outcome)
