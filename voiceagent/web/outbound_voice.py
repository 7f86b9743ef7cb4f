"""`/voice` for a call we placed: which leg to serve (see ``outbound/legs.py``)."""

from __future__ import annotations

from aiohttp import web

from voiceagent.config import CallPlan
from voiceagent.logging import clip, get_logger
from voiceagent.outbound.legs import SCREEN_S, Leg, choose_leg, leg_plan
from voiceagent.outbound.service import Outbound
from voiceagent.protocols import twiml
from voiceagent.web.keys import OUTBOUND, SERVICES

log = get_logger("voiceagent.outbound")


async def outbound_leg(
    app: web.Application, plan: CallPlan, call_sid: str, amd: str | None
) -> CallPlan | str:
    """`/voice` for a call we placed: the plan of the leg to serve, or TwiML with no agent
    (the screening pause, or hang up). ``amd`` is the verdict the redirect carries."""
    services = app[SERVICES]
    side: Outbound | None = app.get(OUTBOUND)
    entry = services.config.current.numbers.get(plan.number)
    call = await side.store.get(call_sid) if side is not None else None
    variables = call.variables if call is not None else {}
    leg = choose_leg(entry.outbound, amd) if entry and entry.outbound else Leg.AGENT
    if side is not None and call is not None and not call.final:
        connected = leg in (Leg.AGENT, Leg.VOICEMAIL)  # a session from here on (the dialer)
        await side.store.update(call_sid, status="in-progress", connected=connected)
    if entry is None or entry.outbound is None:
        return plan.model_copy(update={"direction": "outbound", "variables": variables})
    log.info("outbound_leg", call_sid=call_sid, leg=leg.value, amd=clip(amd or "", 30) or None)
    if leg is Leg.SCREEN:
        redirect = f"{services.settings.public_url}/voice?amd=timeout"
        return twiml.pause_redirect(SCREEN_S, redirect)
    if leg is Leg.HANG_UP:
        return twiml.hangup()
    return leg_plan(plan, entry.outbound, variables, leg, amd=amd)
