"""Plays a realtime call's reconnect filler when its machine says so (session/gap_filler.py).

`ReconnectingUpstream` starts the gap's timer at a drop; `filler_after_ms` later the machine
decides (`filler_due`) and the frames it returns go to Twilio, one by one, for as long as the
machine still wants the filler: the new session's first audio, sent by the upstream pump,
clears it in between. The timer is a task this object holds, cancelled with the upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from voiceagent.errors import ChannelClosed
from voiceagent.logging import get_logger
from voiceagent.modes.call_run import CallRun
from voiceagent.session.gap_filler import RETRY_S, GapFiller
from voiceagent.session.realtime_call import RealtimeCall

log = get_logger("voiceagent.realtime")

SendPhone = Callable[[str], Awaitable[None]]


def gap_filler(run: CallRun) -> GapFiller | None:
    """The call's filler, if its plan names one: the clip as the current config read it (a
    plan from before a reload naming a file the config no longer names gets none)."""
    path = run.plan.realtime.upstream_reconnect.filler
    clip = run.services.config.fillers.get(path)
    if path is not None and clip is None:
        log.warning("reconnect_filler_unknown")
    return GapFiller(clip, run.call.stream_sid) if clip else None


class FillerPlayer:
    """The timer and the sending of one call's reconnect filler."""

    def __init__(
        self, machine: RealtimeCall, send_phone: SendPhone, *, after_ms: int,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:  # fmt: skip
        self._machine, self._send, self._sleep = machine, send_phone, sleep
        self._after_s = after_ms / 1000
        self._task: asyncio.Task[None] | None = None

    @property
    def played_in_gap(self) -> bool:
        filler = self._machine.filler
        return filler is not None and filler.played_in_gap

    def gap_started(self) -> None:
        """A drop (the machine already knows): the filler is due in `filler_after_ms`."""
        self.cancel()
        if self._machine.filler is not None:
            self._task = asyncio.get_running_loop().create_task(self._play())

    def reconnected(self) -> None:
        if self._machine.filler is not None:
            self._machine.filler.reconnected()

    async def gave_up(self) -> None:
        """Every attempt failed: no filler into the failover."""
        self.cancel()
        for frame in self._machine.reconnect_failed():
            with contextlib.suppress(ChannelClosed):
                await self._send(frame)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _play(self) -> None:
        await self._sleep(self._after_s)
        machine = self._machine
        while True:
            frames, again = machine.filler_due()
            for frame in frames:
                if machine.filler is None or not machine.filler.playing:
                    break  # cleared meanwhile: the new reply's audio has begun
                try:
                    await self._send(frame)
                except ChannelClosed:
                    return
            if not again:
                return
            await self._sleep(RETRY_S)
