"""Outbound HTTP: `POST /calls` (place a call), `GET /calls/{sid}` (follow it), and Twilio's
signed callbacks `POST /call-status` (status changes) and `POST /call-status/amd` (AMD verdict).

`/calls` wants `Authorization: Bearer $ADMIN_TOKEN` (404 while ADMIN_TOKEN is unset, like the
other admin endpoints). The callbacks are Twilio webhooks: signature-checked like `/voice`,
answered on any instance (the call's state is in the shared outbound store).
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from voiceagent.errors import OutboundRefused, RefusalKind, TwilioApiError
from voiceagent.logging import clip, get_logger
from voiceagent.outbound.dialer import DialRequest
from voiceagent.outbound.legs import (
    ANSWERED_BY,
    AmdAction,
    amd_action,
)
from voiceagent.outbound.service import make_outbound
from voiceagent.store.live.outbound_state import OutboundCall
from voiceagent.web.keys import OUTBOUND, RECORDER, SERVICES
from voiceagent.web.twilio_http import form_call_sid, signed_form

log = get_logger("voiceagent.outbound")

REFUSAL_STATUS = {
    RefusalKind.NOT_OUTBOUND: 422, RefusalKind.INVALID: 400, RefusalKind.DO_NOT_CALL: 409,
    RefusalKind.CALLING_HOURS: 409, RefusalKind.BUSY: 503, RefusalKind.TWILIO: 502,
}  # fmt: skip
MAX_BODY = 64 * 1024


def add_outbound(app: web.Application) -> None:
    """Routes and the outbound side's lifetime (after the services exist)."""

    async def outbound_ctx(app: web.Application) -> AsyncIterator[None]:
        app[OUTBOUND] = side = make_outbound(app[SERVICES])
        try:
            yield
        finally:
            await side.close()

    app.cleanup_ctx.append(outbound_ctx)
    app.router.add_post("/calls", create_call)
    app.router.add_get("/calls/{call_sid}", show_call)
    app.router.add_post("/call-status", call_status)
    app.router.add_post("/call-status/amd", amd_status)


def _require_admin(request: web.Request) -> None:
    token = request.app[SERVICES].settings.admin_token
    if not token:
        raise web.HTTPNotFound(text="admin endpoints are disabled (ADMIN_TOKEN is empty)")
    given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(given, f"Bearer {token}".encode()):
        log.warning("admin_unauthorized", path=request.path, remote=request.remote)
        raise web.HTTPUnauthorized(text="missing or wrong bearer token",
                                   headers={"WWW-Authenticate": "Bearer"})  # fmt: skip


def _error(status: int, kind: str, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": kind, "message": message}, status=status, headers=headers)


async def _dial_request(request: web.Request) -> DialRequest:
    raw = await request.read()  # bounded by the app's client_max_size, read in time
    if len(raw) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(raw))
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise web.HTTPBadRequest(
            text='the body must be JSON: {"from", "to", "variables"}'
        ) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='the body must be a JSON object: {"from", "to", "variables"}')
    from_, to, variables = body.get("from"), body.get("to"), body.get("variables") or {}
    if not isinstance(from_, str) or not isinstance(to, str) or not isinstance(variables, dict):
        raise web.HTTPBadRequest(text='"from" and "to" are strings, "variables" an object')
    return DialRequest(from_, to, variables)


async def create_call(request: web.Request) -> web.Response:
    """`{"from", "to", "variables"}` → 201 `{"call_sid", "status"}`; refusals name why
    (409 calling hours / do-not-call, 422 not an outbound number, 503 no capacity in time)."""
    _require_admin(request)
    side = request.app[OUTBOUND]
    dial = await _dial_request(request)
    if side.dialer is None:
        return _error(503, "outbound_disabled", side.disabled_because)
    try:
        call = await side.dialer.dial(dial)
    except OutboundRefused as exc:
        side.metrics.dial(dial.from_, exc.kind.value)
        log.info("outbound_refused", reason=exc.kind.value, number=clip(dial.from_, 20))
        extra = {"Retry-After": "10"} if exc.kind is RefusalKind.BUSY else {}
        return _error(REFUSAL_STATUS[exc.kind], exc.kind.value, str(exc), **extra)
    side.metrics.dial(dial.from_, "dialled")
    return web.json_response({"call_sid": call.call_sid, "status": call.status}, status=201)


async def show_call(request: web.Request) -> web.Response:
    """What the shared store knows of an outbound call (status, answered_by, duration)."""
    _require_admin(request)
    call = await request.app[OUTBOUND].store.get(request.match_info["call_sid"])
    if call is None:
        raise web.HTTPNotFound(text="unknown or expired outbound call")
    return web.json_response(_view(call))


def _view(call: OutboundCall) -> dict[str, object]:
    return {"call_sid": call.call_sid, "from": call.number, "to": call.to,
            "status": call.status, "answered_by": call.answered_by, "arm": call.arm,
            "mode": call.mode, "duration_s": call.duration_s,
            "final": call.final}  # fmt: skip


async def call_status(request: web.Request) -> web.Response:
    """Twilio's call status callback: the shared record follows; a final status is counted
    once (no-answer, busy, failed, canceled, completed) per number and arm."""
    form = await signed_form(request)
    call_sid, side = form_call_sid(form), request.app[OUTBOUND]
    status = form.get("CallStatus", "")[:20]
    duration = form.get("CallDuration", "")
    changes: dict[str, object] = {"status": status}
    if duration.isdigit():
        changes["duration_s"] = int(duration)
    if form.get("AnsweredBy") in ANSWERED_BY:
        changes["answered_by"] = form["AnsweredBy"]
    updated = await side.store.update(call_sid, **changes)
    if updated is None:  # not dialled by us, or expired: nothing to follow
        log.info("call_status_unknown_call", call_sid=call_sid, status=status)
        return web.Response(status=204)
    after, was_final = updated
    if after.final and not was_final:
        await request.app[SERVICES].budget.release(call_sid)  # its reservation, if it never ran
        side.metrics.ended(after.number, after.arm, after.status, after.answered_by)
        _record(request.app, after)
        log.info("outbound_call_ended", call_sid=call_sid, number=after.number, arm=after.arm,
                 status=after.status, answered_by=after.answered_by,
                 duration_s=after.duration_s)  # fmt: skip
    return web.Response(status=204)


def _record(app: web.Application, call: OutboundCall) -> None:
    """The outcome's `outbound_calls` row, through the app's records writer (if any)."""
    recorder = app.get(RECORDER)
    if recorder is None:
        return
    plan = app[SERVICES].config.current.plan_for(call.number, call.call_sid)
    dialled = datetime.fromtimestamp(call.created_at, UTC) if call.created_at else None
    recorder.outbound_ended({
        "call_sid": call.call_sid, "number": call.number, "arm": call.arm, "mode": call.mode,
        "experiment": plan.experiment if plan is not None else None, "status": call.status,
        "answered_by": call.answered_by, "dialled_at": dialled, "ended_at": datetime.now(UTC),
        "duration_s": float(call.duration_s) if call.duration_s is not None else None,
    })  # fmt: skip


async def amd_status(request: web.Request) -> web.Response:
    """Twilio's asynchronous AMD verdict: recorded, and the call moved to the leg it calls
    for (the agent after screening, the voicemail leg, or hung up) with a REST update."""
    form = await signed_form(request)
    call_sid, side = form_call_sid(form), request.app[OUTBOUND]
    answered_by = form.get("AnsweredBy", "")
    if answered_by not in ANSWERED_BY:
        log.warning("amd_verdict_unknown", call_sid=call_sid, answered_by=clip(answered_by, 30))
        answered_by = "unknown"
    updated = await side.store.update(call_sid, answered_by=answered_by)
    call = updated[0] if updated is not None else None
    config = request.app[SERVICES].config.current
    entry = config.numbers.get(call.number) if call is not None else None
    if call is None or entry is None or entry.outbound is None:
        log.warning("amd_for_unknown_call", call_sid=call_sid)
        return web.Response(status=204)
    action = amd_action(entry.outbound, answered_by)
    log.info("amd_verdict", call_sid=call_sid, answered_by=answered_by, action=action.value,
             detection_ms=clip(form.get("MachineDetectionDuration", ""), 10))  # fmt: skip
    if action is not AmdAction.NOTHING and side.rest is not None and not call.final:
        public = request.app[SERVICES].settings.public_url
        try:
            if action is AmdAction.REDIRECT:
                await side.rest.update_call(call_sid, url=f"{public}/voice?amd={answered_by}")
            else:
                await side.rest.update_call(call_sid, status="completed")
        except TwilioApiError as exc:  # e.g. the call ended meanwhile (21220)
            log.warning("amd_update_failed", call_sid=call_sid, status=exc.status, code=exc.code)
    return web.Response(status=204)
