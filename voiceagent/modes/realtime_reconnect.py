"""An Inworld drop is not the end of a realtime call: `ReconnectingUpstream` is the call's
upstream channel over a succession of Realtime sessions.

When the session's socket closes or fails while the call goes on (not closed by us, the call
not ended), `receive` opens a new session through the injected connector with bounded retries
and backoff within `upstream_reconnect.within_ms`, sends it the same `session.update`, the
conversation as heard (session/upstream_resume.py) and, if a reply was cut, `response.create`,
and goes on returning that session's frames: the pumps never see the gap. Frames sent while
no session is open (caller audio, mostly) are dropped and counted. Only when every attempt
fails does `receive` return None, and the mode's failover (relay or apology) applies as before.
Each replacement is counted (`upstream_reconnects`) and logged (`upstream_reconnected`, with
`filler=True` when the number's filler was played in the gap: modes/realtime_filler.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from voiceagent.config_knobs import UpstreamReconnect
from voiceagent.errors import ChannelClosed, UpstreamError
from voiceagent.logging import clip, get_logger
from voiceagent.modes.call_run import CallRun
from voiceagent.modes.realtime_filler import FillerPlayer
from voiceagent.modes.realtime_setup import session_update
from voiceagent.session.call import CallSession
from voiceagent.session.realtime_call import RealtimeCall
from voiceagent.session.upstream_resume import backoff_delays, machine_replaced, replay_items
from voiceagent.transport.channel import Channel

log = get_logger("voiceagent.realtime")

Connect = Callable[[], Awaitable[Channel]]
Resume = Callable[[], Awaitable[list[str]]]
"""The frames a new session gets first."""
Dropped = Callable[[], Awaitable[None]]
"""Called once per drop, before the first attempt (the machine and Twilio learn of it)."""


class ReconnectingUpstream:
    """A `Channel` whose peer is whichever Inworld session currently serves the call."""

    def __init__(
        self, first: Channel, *, connect: Connect, resume: Resume, dropped: Dropped,
        knobs: UpstreamReconnect, call: CallSession, worth_it: Callable[[], bool] = lambda: True,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        filler: FillerPlayer | None = None,
    ) -> None:  # fmt: skip
        self.inner = first
        self._connect, self._resume, self._dropped = connect, resume, dropped
        self._filler = filler
        self._knobs = knobs
        self._call, self._sleep, self._worth_it = call, sleep, worth_it
        self._ours = False  # closed or aborted by us: never reconnect
        self._reconnecting = False
        self.dropped_frames = 0

    # -- Channel --------------------------------------------------------------------------------
    @property
    def last_received(self) -> float:
        return self.inner.last_received

    @last_received.setter
    def last_received(self, value: float) -> None:
        self.inner.last_received = value

    @property
    def sending_since(self) -> float | None:
        return self.inner.sending_since

    @sending_since.setter
    def sending_since(self, value: float | None) -> None:
        self.inner.sending_since = value

    @property
    def closed(self) -> bool:
        return self.inner.closed and not self._reconnecting

    @property
    def close_reason(self) -> str:
        return self.inner.close_reason

    async def send(self, text: str) -> None:
        if self._reconnecting:
            self.dropped_frames += 1
            return
        try:
            await self.inner.send(text)
        except ChannelClosed:
            if not self._may_reconnect():
                raise
            self.dropped_frames += 1  # `receive` sees the close and replaces the session

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.release()
        await self.inner.close(code, reason)

    async def abort(self, reason: str) -> None:
        self.release()
        await self.inner.abort(reason)

    def release(self) -> None:
        """Never reconnect again, stop a gap's filler, and let go of the call (a watcher may
        hold this a while). The call's end does it, even when the session is already closed."""
        self._ours = True
        self._connect = self._resume = self._dropped = _gone
        self._worth_it = _never
        if self._filler is not None:
            self._filler.cancel()
            self._filler = None

    async def receive(self) -> str | bytes | None:
        while True:
            raw = await self.inner.receive()
            if raw is not None:
                return raw
            if not self._may_reconnect() or not await self._replace():
                return None

    # -- reconnecting ---------------------------------------------------------------------------
    def _may_reconnect(self) -> bool:
        return (
            not self._ours and self._call.end_reason is None and self._knobs.attempts > 0
            and self._worth_it()
        )  # fmt: skip

    async def _replace(self) -> bool:
        """Open, set up and swap in a new session; False when every attempt failed."""
        started = time.monotonic()
        deadline = started + self._knobs.within_ms / 1000
        log.warning("upstream_dropped", reason=clip(self.inner.close_reason, 120))
        self._reconnecting = True
        filler = self._filler
        try:
            await self._dropped()
            if filler is not None:
                filler.gap_started()
            for attempt, delay in enumerate(backoff_delays(self._knobs), start=1):
                if delay and time.monotonic() + delay < deadline:
                    await self._sleep(delay)
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                channel = await self._open(left, attempt)
                if channel is None:
                    continue
                self.inner = channel
                self._call.counters.upstream_reconnects += 1
                if filler is not None:
                    filler.reconnected()
                log.info(
                    "upstream_reconnected", attempt=attempt,
                    ms=round((time.monotonic() - started) * 1000, 1),
                    dropped_frames=self.dropped_frames,
                    filler=filler is not None and filler.played_in_gap,
                )  # fmt: skip
                return True
        finally:
            self._reconnecting = False
        log.warning("upstream_reconnect_failed", seconds=round(time.monotonic() - started, 2))
        if filler is not None:
            await filler.gave_up()
        return False

    async def _open(self, within_s: float, attempt: int) -> Channel | None:
        """One attempt: a new session with its first frames sent, or None."""
        channel: Channel | None = None
        try:
            async with asyncio.timeout(within_s):
                channel = await self._connect()
                for frame in await self._resume():
                    await channel.send(frame)
            return channel
        except (UpstreamError, ChannelClosed, TimeoutError, OSError) as exc:
            log.warning("upstream_reconnect_attempt_failed", attempt=attempt,
                        error=clip(f"{type(exc).__name__}: {exc}", 200))  # fmt: skip
            if channel is not None and not channel.closed:
                await channel.abort("reconnect attempt failed")
            return None


async def _gone() -> Any:
    raise ChannelClosed("closed by us")


def _never() -> bool:
    return False


def reconnecting(run: CallRun, machine: RealtimeCall, first: Channel) -> ReconnectingUpstream:
    """The call's upstream: `first`, replaced by new sessions of the same call as needed (with
    the machine's filler, if the plan has one, played in the gaps)."""
    after: list[str] = []  # what the new session gets after the replay (a cut reply again)

    async def connect() -> Channel:
        return await run.services.realtime.connect(run.call.call_sid)

    async def dropped() -> None:  # once per drop: tell the machine, clear a cut reply
        phone, after[:] = machine_replaced(machine)
        for frame in phone:
            with contextlib.suppress(ChannelClosed):
                await run.send_phone(frame)

    async def resume() -> list[str]:
        messages = run.call.history.messages()
        items = replay_items(messages, cut_reply=bool(after))
        changes = machine.session_changes()  # `set_language` / `set_turn_taking` stay made
        if after and machine.greeting and not any(m.get("role") == "user" for m in messages):
            return [session_update(run.plan), *changes, *machine.greeting]  # greeting again
        return [session_update(run.plan), *changes, *items, *after]

    knobs = run.plan.realtime.upstream_reconnect
    filler = None
    if machine.filler is not None:
        filler = FillerPlayer(machine, run.send_phone, after_ms=knobs.filler_after_ms)
    return ReconnectingUpstream(
        first, connect=connect, resume=resume, dropped=dropped, call=run.call, knobs=knobs,
        filler=filler,
        # a session that never got ready, or closed after a capacity refusal, was refused:
        # that is today's failover, not a drop
        worth_it=lambda: machine.session_ready and machine.capacity_signal is None,
    )  # fmt: skip
