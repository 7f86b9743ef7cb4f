"""What one app shares among its calls: config, HTTP client, sinks, call outcomes, drain state.

Built by `create_app`; never module-level. Modes receive it as `Services`.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import aiohttp

from voiceagent.config import CallPlan, Config, load_config
from voiceagent.errors import ConfigError
from voiceagent.logging import get_logger
from voiceagent.session.call import CallSession, CallSink, EndReason, NullSink
from voiceagent.settings import Settings
from voiceagent.store.clips import ClipStore, MemoryClipStore
from voiceagent.transport.upstream import RealtimeConnector, RouterClient

if TYPE_CHECKING:
    from voiceagent.metrics import Metrics

V = TypeVar("V")
log = get_logger("voiceagent.runtime")


class ConfigHolder:
    """The current per-number config; a reload swaps it for new calls only."""

    def __init__(self, config: Config) -> None:
        self.current = config
        self.version = 1

    def replace(self, config: Config) -> None:
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


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """How a call's phone socket ended, kept briefly for the `<Connect action>` callback."""

    reason: EndReason
    upstream_failure: str | None
    mode: str
    history: tuple[dict[str, str], ...] = ()


class CallBook(Generic[V]):
    """call_sid → V, bounded in size and time."""

    def __init__(self, ttl_s: float = 600.0, max_entries: int = 10_000) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def record(self, call_sid: str, value: V) -> None:
        self._expire()
        self._items[call_sid] = (time.monotonic() + self._ttl, value)
        self._items.move_to_end(call_sid)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    def get(self, call_sid: str) -> V | None:
        self._expire()
        item = self._items.get(call_sid)
        return None if item is None else item[1]

    def take(self, call_sid: str) -> V | None:
        self._expire()
        item = self._items.pop(call_sid, None)
        return None if item is None else item[1]

    def _expire(self) -> None:
        now = time.monotonic()
        while self._items:
            key, (deadline, _) = next(iter(self._items.items()))
            if deadline > now:
                break
            del self._items[key]

    def __len__(self) -> int:
        return len(self._items)


class OutcomeBook(CallBook[CallOutcome]):
    """call_sid → CallOutcome for `/voice/action` (the callback comes within seconds)."""


class PlanBook(CallBook[CallPlan]):
    """call_sid → the CallPlan `/voice` answered with, so a reload before the phone socket
    opens does not change the call's arm or agent. Kept an hour: a failover leg needs it too."""

    def __init__(self, ttl_s: float = 3600.0, max_entries: int = 100_000) -> None:
        super().__init__(ttl_s, max_entries)


class ActiveCalls:
    """The calls in flight, for graceful drain and the active-calls gauge."""

    def __init__(self) -> None:
        self.draining = False
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


@dataclass
class Services:
    """Everything a mode may use; one instance per app."""

    settings: Settings
    config: ConfigHolder
    http: aiohttp.ClientSession
    realtime: RealtimeConnector
    router: RouterClient
    sink: CallSink = field(default_factory=NullSink)
    outcomes: OutcomeBook = field(default_factory=OutcomeBook)
    plans: PlanBook = field(default_factory=PlanBook)
    calls: ActiveCalls = field(default_factory=ActiveCalls)
    metrics: Metrics | None = None
    clips: ClipStore = field(default_factory=MemoryClipStore)
    extras: dict[str, Any] = field(default_factory=dict)

    async def remember_plan(self, call_sid: str, plan: CallPlan) -> None:
        """`/voice` answered `call_sid` with `plan`: its stream and callback will use it."""
        self.plans.record(call_sid, plan)

    async def plan_for_call(self, call_sid: str, number: str) -> CallPlan | None:
        """The call's plan, for its stream and its `<Connect action>` callback alike: the one
        `/voice` answered with (so calls in flight keep their arm and agent across reloads);
        else (it expired) the current config's plan for `number`."""
        plan = self.plans.get(call_sid)
        if plan is not None and plan.number == number:
            return plan
        return self.config.current.plan_for(number, call_sid)

    async def finish_call(self, call: CallSession) -> None:
        """Record the outcome for `/voice/action` and hand the call to the sink."""
        self.outcomes.record(
            call.call_sid,
            CallOutcome(
                reason=call.end_reason or EndReason.INTERNAL_ERROR,
                upstream_failure=call.upstream_failure,
                mode=call.mode,
                history=tuple(call.history.messages()),
            ),
        )
        self.sink.call_ended(call)

    async def take_outcome(self, call_sid: str) -> CallOutcome | None:
        """How the call's last stream ended (once: the callback consumes it)."""
        return self.outcomes.take(call_sid)

    async def keep_outcome(self, call_sid: str, outcome: CallOutcome) -> None:
        """Put an outcome back for the next leg (a failover leg restores its history)."""
        self.outcomes.record(call_sid, outcome)
