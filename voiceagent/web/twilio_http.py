"""`POST /voice` (incoming call) and `POST /voice/action` (`<Connect action>` callback).

Both are Twilio webhooks: form-encoded, signed over the public URL rebuilt from the raw path
and query. Everything else about them comes from the caller's side, so it is checked before it
is used, logged or stored: the CallSid must look like one (400 otherwise), the called number
must be E.164 to match a configured number, the caller's number is logged masked, and every
other field is cut to `FORM_VALUE_CHARS`.
"""

from __future__ import annotations

from aiohttp import web

from voiceagent.config import E164, CallPlan
from voiceagent.logging import clip, get_logger, mask_number
from voiceagent.metrics import RefusalReason
from voiceagent.outbound.legs import is_outbound, our_number
from voiceagent.protocols import twiml
from voiceagent.protocols.signature import is_call_sid
from voiceagent.runtime import Services
from voiceagent.web.keys import SERVICES, VERIFIER
from voiceagent.web.outbound_voice import outbound_leg
from voiceagent.web.signature_log import rejection_fields

log = get_logger("voiceagent.web")
CONTEXT_AFTER_TWIML = frozenset({"realtime-passthrough"})
"""Modes whose TwiML holds nothing of the call's context: their context is fetched while
Twilio opens the stream (which waits for it), instead of before `/voice` answers."""

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
FORM_VALUE_CHARS = 1024


def _xml(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/xml")


async def _form(request: web.Request) -> dict[str, str]:
    """The webhook's form fields (each cut to FORM_VALUE_CHARS); 4xx for anything Twilio
    would not send: another content type (a multipart file upload), undecodable bytes."""
    if request.content_type != FORM_CONTENT_TYPE:
        raise web.HTTPUnsupportedMediaType(text=f"Twilio webhooks are {FORM_CONTENT_TYPE}")
    try:
        form = await request.post()
    except ValueError as exc:  # UnicodeDecodeError and malformed bodies
        raise web.HTTPBadRequest(text="malformed form body") from exc
    fields: dict[str, str] = {}
    for name, value in form.items():
        if not isinstance(value, str):
            raise web.HTTPBadRequest(text="unexpected file field")
        fields.setdefault(name[:FORM_VALUE_CHARS], value[:FORM_VALUE_CHARS])
    return fields


async def signed_form(request: web.Request) -> dict[str, str]:
    """The webhook's form fields, or 403 when the signature does not verify."""
    if request.app[SERVICES].settings.insecure_skip_signature:
        return await _form(request)
    form = await _form(request)
    signature = request.headers.get("X-Twilio-Signature")
    raw = await request.post()  # the MultiDict: repeated keys are signed with all their values
    # Twilio signed the URL as configured: the raw, still percent-encoded path and query.
    if not request.app[VERIFIER].verify_webhook(request.raw_path, raw, signature):
        checked = request.app[VERIFIER].https_url(request.raw_path)
        log.warning(
            "signature_rejected", path=clip(request.path),
            call_sid=clip(form.get("CallSid", ""), 40), **rejection_fields(request, checked),
        )  # fmt: skip
        raise web.HTTPForbidden(text="invalid X-Twilio-Signature")
    return form


def form_call_sid(form: dict[str, str]) -> str:
    """The `CallSid` of a signed Twilio form; 400 (logged) when it is missing or malformed."""
    call_sid = form.get("CallSid", "")
    if not is_call_sid(call_sid):
        log.warning("call_sid_invalid", call_sid=clip(call_sid, 40))
        raise web.HTTPBadRequest(text="missing or malformed CallSid")
    return call_sid


def _refused(services: Services, reason: RefusalReason, **fields: object) -> None:
    log.info("call_refused", reason=reason, **fields)
    if services.metrics is not None:
        services.metrics.refuse(reason)


def _overloaded(services: Services, call_sid: str) -> web.Response:
    """Over MAX_CONCURRENT_CALLS: 503 (Twilio tries the number's fallback URL) or, with
    OVERLOAD_POLICY=busy, a short spoken message and hang-up."""
    settings = services.settings
    _refused(
        services, "overload", call_sid=call_sid, active_calls=services.calls.count(),
        max_concurrent_calls=settings.max_concurrent_calls, policy=settings.overload_policy,
    )  # fmt: skip
    if settings.overload_policy == "busy":
        return _xml(twiml.say_hangup(settings.overload_message))
    return web.Response(status=503, text="over capacity; use the fallback URL")


async def _within_budget(
    services: Services, plan: CallPlan, call_sid: str
) -> CallPlan | web.Response:
    """A realtime call takes a lease of the Inworld Realtime session budget shared by all
    instances (released when its stream ends, or expiring if it never opens). At the cap the
    number's overflow policy applies at once, with no failed attempt: its `fallback_mode`
    takes the call, a busy message, or 503 for Twilio's fallback URL."""
    modes = services.modes
    if not modes[plan.mode].holds_realtime_session or await services.budget.acquire(call_sid):
        return plan
    overflow = plan.overflow
    fallback_mode = modes.get(plan.fallback_mode)
    fallback = (
        plan.fallback_mode
        if fallback_mode is not None and not fallback_mode.holds_realtime_session
        else None
    )
    result: CallPlan | web.Response
    if overflow.policy == "fallback_mode" and fallback is not None:
        action, result = "fallback_mode", plan.model_copy(update={"mode": fallback})
    elif overflow.policy == "busy":
        action, result = "busy", _xml(twiml.say_hangup(overflow.message))
    else:
        action = "twilio_fallback"
        result = web.Response(status=503, text="realtime sessions exhausted; use the fallback URL")
    log.warning("realtime_budget_full", call_sid=call_sid, action=action,
                number=plan.number)  # fmt: skip
    if services.metrics is not None:
        services.metrics.overflow(plan.number, action)
    return result


async def voice(request: web.Request) -> web.Response:
    """Answer an incoming call with the TwiML of the mode configured for its `To` number.

    The load cap counts the calls whose phone socket is open (`ActiveCalls`); a call answered
    here whose stream has not opened yet is not counted, so a burst can exceed the cap by the
    calls answered in the second or so before their streams open.
    """
    services = request.app[SERVICES]
    if services.calls.draining:
        _refused(services, "draining")
        return web.Response(status=503, text="draining; use the fallback URL")
    form = await signed_form(request)
    call_sid, number = form_call_sid(form), our_number(form)  # From, on a call we placed
    if services.calls.count() >= services.settings.max_concurrent_calls:
        return _overloaded(services, call_sid)
    config = services.config.current
    plan = config.plan_for(number, call_sid) if E164.match(number) else None
    if plan is None:
        _refused(services, "unknown_number", call_sid=call_sid, number=clip(number, 32))
        return _xml(twiml.say_hangup(config.unknown_numbers.message))
    if is_outbound(form):  # screening while AMD listens, the agent, a voicemail, or hang up
        leg = await outbound_leg(request.app, plan, call_sid, request.query.get("amd"))
        if isinstance(leg, str):
            return _xml(leg)
        plan = leg
    admitted = await _within_budget(services, plan, call_sid)
    if isinstance(admitted, web.Response):
        return admitted
    plan = admitted
    mode = services.modes[plan.mode]
    await services.remember_plan(call_sid, plan)  # the call keeps this plan across reloads
    log.info(
        "call_answered", call_sid=call_sid, number=number, mode=plan.mode, arm=plan.arm,
        caller=mask_number(form.get("From")),
    )  # fmt: skip
    plan = await _with_context(services, plan, call_sid, form)
    if plan.rejected is not None:
        return _xml(twiml.say_hangup(plan.rejected))
    return _xml(mode.twiml(plan, call_sid, services))


async def _with_context(
    services: Services, plan: CallPlan, call_sid: str, form: dict[str, str]
) -> CallPlan:
    """Keep the call's facts and start its context fetch. A realtime call's TwiML needs no
    context: the fetch runs on while Twilio opens the stream (which waits for it); any other
    mode's TwiML (its greeting) is built with the context, so it is awaited here."""
    events = plan.webhooks.call_events
    if plan.webhooks.call_context is None and events is None and not plan.recording.enabled:
        return plan
    facts = {"from": form.get("From", ""), "to": form.get("To", ""), "direction": plan.direction,
             "number": plan.number, "events_url": events.url if events else ""}  # fmt: skip
    await services.stores.context.put_facts(call_sid, facts)
    if services.contexts is None or plan.webhooks.call_context is None:
        return plan
    await services.contexts.begin(plan, call_sid, facts)
    if plan.mode in CONTEXT_AFTER_TWIML:
        return plan
    return await services.contexts.settle(plan, call_sid)


async def voice_action(request: web.Request) -> web.Response:
    """The `<Connect action>` callback: the mode named in the URL decides what happens next."""
    form = await signed_form(request)
    form_call_sid(form)
    if is_outbound(form):  # the modes find a call's plan by the number it is for: ours
        form = {**form, "To": our_number(form)}
    query = {k[:FORM_VALUE_CHARS]: v[:FORM_VALUE_CHARS] for k, v in request.query.items()}
    mode = request.app[SERVICES].modes.get(query.get("mode", ""))
    if mode is None:
        log.warning("action_unknown_mode", mode=clip(query.get("mode", "")))
        return _xml(twiml.empty())
    services = request.app[SERVICES]
    rejected = await _rejected(services, form)
    if rejected is not None:  # a realtime stream the call context refused
        call_sid = form.get("CallSid", "")
        services.call_ends_here(call_sid, await services.take_outcome(call_sid))
        return _xml(twiml.say_hangup(rejected))
    # The action URL's own query (mode, attempt, ...) is signed too; form fields win.
    return _xml(await mode.action({**query, **form}, services))


async def _rejected(services: Services, form: dict[str, str]) -> str | None:
    """The call context's `reject` message for this call, if it has one."""
    if services.contexts is None:
        return None
    plan = await services.plan_for_call(form.get("CallSid", ""), form.get("To", ""))
    return plan.rejected if plan is not None else None
