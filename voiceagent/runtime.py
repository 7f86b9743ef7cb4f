"""What one app shares among its calls: config, HTTP client, sinks, call outcomes, drain state.

Built by `create_app`; never module-level. Modes receive it as `Services`.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

from voiceagent.config import CallPlan, Config
from voiceagent.session.call import CallSession, CallSink, EndReason, NullSink
from voiceagent.settings import Settings
from voiceagent.store.clips import ClipStore, MemoryClipStore

if TYPE_CHECKING:
    from voiceagent.metrics import Metrics


class ConfigHolder:
    """The current per-number config; a reload swaps it for new calls only."""

    def __init__(self, config: Config) -> None:
        self.current = config
        self.version = 1

    def replace(self, config: Config) -> None:
        self.current = config
        self.version += 1


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """How a call's phone socket ended, kept briefly for the `<Connect action>` callback."""

    reason: EndReason
    upstream_failure: str | None
    mode: str
    history: tuple[dict[str, str], ...] = ()


class OutcomeBook:
    """call_sid → CallOutcome, bounded in size and time (the callback comes within seconds)."""

    def __init__(self, ttl_s: float = 600.0, max_entries: int = 10_000) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._items: OrderedDict[str, tuple[float, CallOutcome]] = OrderedDict()

    def record(self, call_sid: str, outcome: CallOutcome) -> None:
        self._expire()
        self._items[call_sid] = (time.monotonic() + self._ttl, outcome)
        self._items.move_to_end(call_sid)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    def take(self, call_sid: str) -> CallOutcome | None:
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

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no call is in flight; False if `timeout` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
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
    sink: CallSink = field(default_factory=NullSink)
    outcomes: OutcomeBook = field(default_factory=OutcomeBook)
    calls: ActiveCalls = field(default_factory=ActiveCalls)
    metrics: Metrics | None = None
    clips: ClipStore = field(default_factory=MemoryClipStore)
    extras: dict[str, Any] = field(default_factory=dict)

    def finish_call(self, call: CallSession, plan: CallPlan | None = None) -> None:
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
