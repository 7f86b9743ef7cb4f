"""Placing an outbound call: the rules, the waits, the create, the shared record.

``Dialer.dial`` checks the rules (``rules.check_dial``: outbound number, E.164, do-not-call,
calling hours), then waits, never failing over, until the number is under its
``max_concurrent`` and, when its calls may run realtime, a Realtime session is free (leases
held plus this instance's calls still ringing); then it takes the next CPS slot and asks
Twilio to create the call with AMD and status callbacks; the call is kept in the shared
outbound store for ``/voice`` and the callbacks, on whichever instance they land. A call that
never connects never reaches ``/voice``, so it never holds an Inworld session lease.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from voiceagent.config import Config
from voiceagent.config_models import OutboundConfig
from voiceagent.errors import OutboundRefused, RefusalKind, TwilioApiError
from voiceagent.logging import get_logger
from voiceagent.outbound.legs import SCREEN_S
from voiceagent.outbound.pacing import Pacer
from voiceagent.outbound.rules import DoNotCall, check_dial, clean_variables
from voiceagent.runtime import Services
from voiceagent.store.live.factory import budget_settings
from voiceagent.store.live.outbound_state import OutboundCall, OutboundStore
from voiceagent.transport.twilio_rest import CallRequest, TwilioRest

log = get_logger("voiceagent.outbound")

POLL_S = 0.2


@dataclass(frozen=True, slots=True)
class DialRequest:
    from_: str
    to: str
    variables: Mapping[str, object]


def may_hold_a_session(services: Services, number: str) -> bool:
    """Whether a call of ``number`` can land in a mode that holds a Realtime session (its
    mode, or any arm's)."""
    entry = services.config.current.numbers[number]
    names = [arm.mode for arm in entry.experiment.arms] if entry.experiment else [entry.mode]
    return any(name in services.modes and services.modes[name].holds_realtime_session
               for name in names if name is not None)  # fmt: skip


class Dialer:
    """Places outbound calls for one instance (see the module docstring)."""

    def __init__(
        self, services: Services, rest: TwilioRest, store: OutboundStore, pacer: Pacer, *,
        wait_s: float = 120.0, now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:  # fmt: skip
        self.services, self.rest, self.store, self.pacer = services, rest, store, pacer
        self.wait_s, self._now = wait_s, now
        self._lists: DoNotCall | None = None
        self._ringing: dict[str, float] = {}  # realtime-capable calls dialled here, not answered
        self._locks: dict[str, asyncio.Lock] = {}

    def do_not_call(self, config: Config) -> DoNotCall:
        """The do-not-call lists of ``config``, read again whenever the config was reloaded."""
        if self._lists is None or self._lists.config is not config:
            self._lists = DoNotCall(config)
        return self._lists

    def check(self, request: DialRequest) -> tuple[OutboundConfig, dict[str, str]]:
        """The rules alone (OutboundRefused): the number's settings and the clean variables."""
        config = self.services.config.current
        outbound = check_dial(config, self.do_not_call(config), request.from_, request.to,
                              self._now())  # fmt: skip
        return outbound, clean_variables(request.variables)

    async def dial(self, request: DialRequest) -> OutboundCall:
        """Place one call; OutboundRefused names why not (the rules, no capacity in time, or
        Twilio's refusal)."""
        outbound, variables = self.check(request)
        realtime = may_hold_a_session(self.services, request.from_)
        lock = self._locks.setdefault(request.from_, asyncio.Lock())
        async with lock:  # this instance's dials of a number queue for its capacity in order
            waited = await self._capacity(request.from_, outbound, realtime)
            await self.pacer.slot()
            call = await self._create(request, outbound, variables)
        if realtime:
            limit = outbound.ring_timeout_s + (SCREEN_S if outbound.amd else 0) + 15
            self._ringing[call.call_sid] = time.monotonic() + limit
        log.info("outbound_dialled", call_sid=call.call_sid, number=request.from_,
                 amd=outbound.amd, waited_ms=round(waited * 1000))  # fmt: skip
        return call

    async def _create(
        self, request: DialRequest, outbound: OutboundConfig, variables: dict[str, str]
    ) -> OutboundCall:
        public = self.services.settings.public_url
        try:
            info = await self.rest.create_call(CallRequest(
                to=request.to, from_=request.from_, url=public + "/voice",
                status_callback=public + "/call-status",
                machine_detection="DetectMessageEnd" if outbound.amd else "",
                async_amd=outbound.amd, async_amd_status_callback=public + "/call-status/amd",
                ring_timeout_s=outbound.ring_timeout_s,
            ))  # fmt: skip
        except TwilioApiError as exc:
            log.warning("outbound_create_failed", status=exc.status, code=exc.code,
                        number=request.from_)  # fmt: skip
            raise OutboundRefused(RefusalKind.TWILIO, str(exc)) from exc
        plan = self.services.config.current.plan_for(request.from_, info.sid)
        call = OutboundCall(
            info.sid, request.from_, request.to, variables, status=info.status or "queued",
            arm=plan.arm if plan else None, mode=plan.mode if plan else None,
            created_at=time.time(),
        )  # fmt: skip
        await self.store.put(call)
        return call

    async def _capacity(self, number: str, outbound: OutboundConfig, realtime: bool) -> float:
        """Wait until the number may dial again; the seconds waited (OutboundRefused BUSY
        after ``wait_s``)."""
        started = time.monotonic()
        while True:
            full = await self.store.active(number) >= outbound.max_concurrent
            if not full and realtime:
                full = not await self._session_free()
            if not full:
                return time.monotonic() - started
            if time.monotonic() - started >= self.wait_s:
                raise OutboundRefused(RefusalKind.BUSY, "no capacity to dial within "
                                      f"{self.wait_s:.0f} s (max_concurrent or the Realtime "
                                      "session budget)")  # fmt: skip
            await asyncio.sleep(POLL_S)

    async def _session_free(self) -> bool:
        """Whether a Realtime session is free for one more call: leases in use plus the calls
        this instance dialled that may still take one (ringing, or screened while AMD
        listens: not yet connected to the agent, not ended)."""
        now = time.monotonic()
        for sid, expires in list(self._ringing.items()):
            call = await self.store.get(sid)
            if now > expires or call is None or call.final or call.connected:
                del self._ringing[sid]
        cap, _ = budget_settings(self.services.settings)
        return await self.services.budget.in_use() + len(self._ringing) < cap
