"""`POST /voice` (incoming call) and `POST /voice/action` (`<Connect action>` callback)."""

from __future__ import annotations

from aiohttp import web

from voiceagent.logging import get_logger
from voiceagent.modes import MODES
from voiceagent.protocols import twiml
from voiceagent.web.keys import SERVICES, VERIFIER

log = get_logger("voiceagent.web")


def _xml(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/xml")


async def _signed_form(request: web.Request) -> dict[str, str]:
    """The webhook's form params, or 403 when the signature does not verify."""
    form = await request.post()
    verifier = request.app[VERIFIER]
    signature = request.headers.get("X-Twilio-Signature")
    skip = request.app[SERVICES].settings.insecure_skip_signature
    if not skip and not verifier.verify_webhook(request.rel_url.path_qs, form, signature):
        log.warning(
            "signature_rejected", path=request.path, has_signature=signature is not None,
            call_sid=str(form.get("CallSid", "")),
        )
        raise web.HTTPForbidden(text="invalid X-Twilio-Signature")
    return {k: str(v) for k, v in form.items()}


async def voice(request: web.Request) -> web.Response:
    """Answer an incoming call with the TwiML of the mode configured for its `To` number."""
    services = request.app[SERVICES]
    if services.calls.draining:
        log.info("call_refused_draining")
        return web.Response(status=503, text="draining; use the fallback URL")
    form = await _signed_form(request)
    call_sid, number = form.get("CallSid", ""), form.get("To", "")
    if not call_sid:
        raise web.HTTPBadRequest(text="missing CallSid")
    config = services.config.current
    plan = config.plan_for(number, call_sid)
    if plan is None:
        log.info("call_refused_unknown_number", call_sid=call_sid, number=number)
        return _xml(twiml.say_hangup(config.unknown_numbers.message))
    mode = MODES[plan.mode]
    services.plans.record(call_sid, plan)  # the call keeps this plan across reloads
    log.info(
        "call_answered", call_sid=call_sid, number=number, mode=plan.mode, arm=plan.arm,
        caller=form.get("From", ""),
    )
    return _xml(mode.twiml(plan, call_sid, services))


async def voice_action(request: web.Request) -> web.Response:
    """The `<Connect action>` callback: the mode named in the URL decides what happens next."""
    form = await _signed_form(request)
    mode = MODES.get(request.query.get("mode", ""))
    if mode is None:
        log.warning("action_unknown_mode", mode=request.query.get("mode"))
        return _xml(twiml.empty())
    # The action URL's own query (mode, attempt, ...) is signed too; form fields win.
    return _xml(mode.action({**request.query, **form}, request.app[SERVICES]))
