"""Watching channels for a silent or stuck peer: one ticker per event loop for every call.

`watch(channel, ...)` returns once it aborted the channel (in the watching task, the call's
own); a call cancels it when it ends. No timer per frame, nor per call: the ticker looks at
every watched channel once a second and wakes the watch whose channel expired.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from voiceagent.transport.channel import Channel


@dataclass(eq=False, slots=True)
class _Watched:
    channel: Channel
    idle_timeout: float | None
    send_timeout: float
    what: str
    expired: asyncio.Future[str]

    def expiry(self, now: float) -> str | None:
        """Why the channel must be aborted now (None: it may go on)."""
        since = self.channel.sending_since
        if since is not None and now - since > self.send_timeout:
            return f"{self.what} not reading for {self.send_timeout:g}s"
        idle = self.idle_timeout
        if idle is not None and now - self.channel.last_received > idle:
            return f"{self.what} silent for {idle:g}s"
        return None


class _Ticker:
    """Checks every watched channel of one step once per step: one timer for all calls."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.watched: set[_Watched] = set()
        self.task: asyncio.Task[None] | None = None

    def add(self, watched: _Watched) -> None:
        self.watched.add(watched)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            await self._tick()
        finally:  # no task (and through it, no loop) is kept once nothing is watched
            self.task = None

    async def _tick(self) -> None:
        while self.watched:
            await asyncio.sleep(self.step)
            now = time.monotonic()
            for watched in list(self.watched):
                reason = watched.expiry(now)
                if reason is None or watched.expired.done():
                    continue
                self.watched.discard(watched)
                watched.expired.set_result(reason)


_TICKERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, _Ticker]] = (
    weakref.WeakKeyDictionary()
)


async def watch(
    channel: Channel,
    idle_timeout: float | None,
    send_timeout: float,
    what: str,
    on_expired: Callable[[str], None] | None = None,
) -> None:
    """Abort `channel` when its peer sent nothing for `idle_timeout` seconds (None: never) or
    a send has been blocked for `send_timeout` seconds; `on_expired(reason)` runs first (the
    call records why: aborting a server socket may cancel its handler). Returns after
    aborting; cancel it when the call ends. No timer per frame, nor per call: one ticker per
    event loop (per check interval) looks at every watched channel, once a second."""
    step = min(1.0, send_timeout / 2, idle_timeout / 2 if idle_timeout else 1.0)
    loop = asyncio.get_running_loop()
    tickers = _TICKERS.setdefault(loop, {})
    ticker = tickers.get(step) or tickers.setdefault(step, _Ticker(step))
    watched = _Watched(channel, idle_timeout, send_timeout, what, loop.create_future())
    ticker.add(watched)
    try:
        reason = await watched.expired
    finally:
        ticker.watched.discard(watched)
    if on_expired is not None:
        on_expired(reason)
    await channel.abort(reason)
