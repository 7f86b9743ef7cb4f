"""Placing an outbound call: the rules, the waits, the create, the shared record.

``Dialer.dial`` checks the rules (``rules.check_dial``: outbound number, E.164, do-not-call,
calling hours), then waits, never failing over, until the number is under its
``max_concurrent`` and, when its calls may run realtime, it holds a lease of the shared Realtime
session budget (a reservation, taken atomically across instances, for as long as the call may
ring and be screened); then it takes the next CPS slot and asks Twilio to create the call with
AMD and status callbacks; the reservation becomes the call's lease (its CallSid), which
``/voice`` then renews as any realtime call's. The call is kept in the shared outbound store for
``/voice`` and the callbacks, on whichever instance they land; its final status (or the lease's
expiry) frees the slot of a call that never connected.
"""

from __future__ import annotations

import asyncio
import secrets
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
        reservation = f"dial-{secrets.token_hex(8)}" if realtime else None
        lock = self._locks.setdefault(request.from_, asyncio.Lock())
        budget = self.services.budget
        try:
            async with lock:  # this instance's dials of a number queue for capacity in order
                waited = await self._capacity(request.from_, outbound, reservation)
                await self.pacer.slot()
                call = await self._create(request, outbound, variables)
        except BaseException:  # refused, cancelled (Ctrl-C): the reserved slot is free again
            if reservation is not None:
                await budget.release(reservation)
            raise
        if reservation is not None:
            plan = self.services.config.current.plan_for(request.from_, call.call_sid)
            if plan is not None and self.services.modes[plan.mode].holds_realtime_session:
                await budget.rekey(reservation, call.call_sid)  # the call's lease from now on
            else:  # its arm runs relay: no session
                await budget.release(reservation)
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

    async def _capacity(
        self, number: str, outbound: OutboundConfig, reservation: str | None
    ) -> float:
        """Wait until the number may dial again, holding `reservation`'s lease of the Realtime
        session budget if given; the seconds waited (OutboundRefused BUSY after ``wait_s``)."""
        started = time.monotonic()
        ring_s = outbound.ring_timeout_s + (SCREEN_S if outbound.amd else 0) + 15
        while True:
            full = await self.store.active(number) >= outbound.max_concurrent
            if not full and reservation is not None:
                full = not await self.services.budget.acquire(reservation, ring_s)
            if not full:
                return time.monotonic() - started
            if time.monotonic() - started >= self.wait_s:
                raise OutboundRefused(RefusalKind.BUSY, "no capacity to dial within "
                                      f"{self.wait_s:.0f} s (max_concurrent or the Realtime "
                                      "session budget)")  # fmt: skip
            await asyncio.sleep(POLL_S)
