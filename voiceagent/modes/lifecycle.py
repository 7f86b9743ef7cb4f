"""The call lifecycle both modes run inside: from the upgraded phone socket to `call_ended`.

`serve_call` waits for the mode's first frame (`start` / `setup`), resolves the call's plan
(the one `/voice` gave it: `Services.plan_for_call`, the same source the `<Connect action>`
callback uses), refuses a stream that no answered call owns (no plan, another mode's number,
a missing or wrong per-call token) with a named close code before any upstream session opens,
builds and binds the `CallSession`, runs the mode's conversation under one bad-frame budget and
a silence/stuck-peer watch, maps how it ended (upstream failure, drain, crash), reports turns,
records the outcome for the callback and logs one `call_ended` line with the same counters in
both modes.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import replace

from aiohttp import WSCloseCode

from voiceagent.config import E164, CallPlan
from voiceagent.errors import CallOver, ChannelClosed, ProtocolError, UpstreamError
from voiceagent.logging import bind_call, clip, get_logger
from voiceagent.modes.base import Mode
from voiceagent.modes.call_run import CallRun, CallStart
from voiceagent.protocols.signature import is_call_sid, verify_stream_token
from voiceagent.runtime import Services
from voiceagent.session.call import CallSession, EndReason
from voiceagent.store.live.realtime_budget import hold
from voiceagent.transport.channel import Channel
from voiceagent.transport.watch import watch
from voiceagent.webhooks.event_hold import hold_event, holds_event

log = get_logger("voiceagent.call")

REFUSE_CLOSE_S = 0.5
"""How long a refused stream's closing handshake may take before its connection is cut."""
MAX_FRAMES_BEFORE_START = 10
"""Frames other than the start frame tolerated before it (then the stream is refused)."""
CLOSE_TIMEOUT_S = 2.0
_SID = re.compile(r"^[A-Za-z0-9]{1,64}$")


async def serve_call(
    phone: Channel, services: Services, mode: Mode, admitted: Callable[[], None] | None = None
) -> None:
    """Run one call of `mode` on an accepted, signature-checked phone socket. `admitted` is
    called once the stream proved it is a call `/voice` answered (its token is valid): from
    then on it is a call, counted against MAX_CONCURRENT_CALLS."""
    start = await _await_start(phone, mode, services.settings.stream_start_timeout)
    if start is None:
        return
    plan = await services.plan_for_call(start.call_sid, start.number)
    number = start.number if E164.match(start.number) else clip(start.number, 20)
    call = CallSession(
        call_sid=start.call_sid, number=number, mode=mode.name,
        arm=plan.arm if plan else None, experiment=plan.experiment if plan else None,
        stream_sid=start.stream_sid, record_transcripts=bool(plan and plan.record_transcripts),
        context=plan.context if plan else None,
    )  # fmt: skip
    call.counters.frames_in = start.frames_read
    bind_call(start.call_sid, number, mode.name, arm=call.arm)
    refusal = _refusal(start, plan, mode, services)
    if refusal is None and plan is not None and plan.rejected is not None:
        log.info("stream_rejected_by_context")  # `/voice/action` says the message, hangs up
        await phone.close(WSCloseCode.OK, "rejected by call context")
        return
    if refusal is not None or plan is None:
        log.warning("stream_refused", why=refusal, planned_mode=plan.mode if plan else None)
        await refuse(phone, WSCloseCode.POLICY_VIOLATION, refusal or "no plan")
        return
    if admitted is not None:
        admitted()
    failover_from = start.parameters.get("failover_from")
    call.failover_from = failover_from if failover_from in services.modes else None
    services.sink.call_started(call)  # a failover leg is recorded and counted as one
    if services.recordings is not None and call.failover_from is None:
        services.recordings.start(plan, call.call_sid)  # the number's recording: Twilio REST
    log.info("stream_started", stream_sid=start.stream_sid or None)
    run = CallRun(phone, call, plan, services, start)
    try:
        await _supervised(run, mode)
    except CallOver:
        pass
    except UpstreamError as exc:
        run.upstream_failed(exc.kind, str(exc))
    except asyncio.CancelledError:
        call.end(EndReason.DRAINED, "server shutting down")
        raise
    except Exception as exc:  # the top of a call: log with traceback, close cleanly
        log.error("call_crashed", exc_info=exc)
        call.end(EndReason.INTERNAL_ERROR, type(exc).__name__)
    finally:
        call.end(EndReason.CALLER_DISCONNECTED, "call ended")
        run.report_turns(final=True)
        await services.finish_call(call, plan)  # before the phone closes: the callback follows
        log.info("call_ended", **call.summary())
        await _close_phone(phone, call)


async def _supervised(run: CallRun, mode: Mode) -> None:
    """The mode's conversation, with the phone watched for silence and stuck sends; a realtime
    call holds its lease of the shared Inworld session budget (renewed, released at the end);
    a leg after a failed one holds the call's provisional `call.ended` (webhooks/event_hold.py)."""
    services, sid = run.services, run.call.call_sid
    settings = services.settings
    idle = settings.phone_idle_timeout if mode.phone_sends_continuously else None

    def phone_gone(reason: str) -> None:
        run.call.end(EndReason.CALLER_DISCONNECTED, reason)

    phone_watch = watch(run.phone, idle, settings.send_timeout, "phone", phone_gone)
    watchers = [asyncio.create_task(phone_watch)]
    if mode.holds_realtime_session:
        watchers.append(asyncio.create_task(hold(services.budget, sid)))
    if services.records is not None and holds_event(run.call, run.plan, run.start.parameters):
        hold_s = settings.webhook_failover_hold_seconds  # an earlier leg's event waits for it
        watchers.append(asyncio.create_task(hold_event(services.records, sid, hold_s)))
    try:
        await mode.converse(run)
    finally:
        for watcher in watchers:
            watcher.cancel()
        if mode.holds_realtime_session:
            await services.budget.release(sid)


def _refusal(start: CallStart, plan: CallPlan | None, mode: Mode, services: Services) -> str | None:
    """Why this stream may not run (None: it may)."""
    settings = services.settings
    if not settings.insecure_skip_signature and not verify_stream_token(
        settings.twilio_auth_token, start.call_sid, start.parameters.get("token"), start.parameters
    ):
        return "missing or invalid stream token"
    if plan is None:
        return "number not configured"
    if plan.mode != mode.name:
        return "number not configured for this mode"
    return None


async def refuse(phone: Channel, code: int, reason: str) -> None:
    """Close a stream that is not (yet) a call: a peer that does not answer the closing
    handshake at once is cut off, so a refused socket holds nothing."""
    try:
        async with asyncio.timeout(REFUSE_CLOSE_S):
            await phone.close(code, reason)
    except (TimeoutError, OSError, ChannelClosed):
        await phone.abort(reason)


async def _await_start(phone: Channel, mode: Mode, timeout_s: float) -> CallStart | None:
    """Read until the mode's start frame (within `timeout_s` of the upgrade); a few other
    frames before it are tolerated."""
    ignored = read = 0
    try:
        async with asyncio.timeout(timeout_s):
            while ignored <= MAX_FRAMES_BEFORE_START:
                raw = await phone.receive()
                read += 1
                if raw is None:
                    log.info("stream_ended_before_start", reason=phone.close_reason)
                    return None
                try:
                    start = mode.read_start(raw)
                except ProtocolError as exc:
                    ignored += 1
                    log.warning("phone_bad_frame", error=clip(exc, 200), before_start=True)
                    continue
                if start is None:
                    continue  # e.g. Media Streams `connected`
                if not is_call_sid(start.call_sid) or not _SID.match(start.stream_sid or "x"):
                    await refuse(phone, WSCloseCode.POLICY_VIOLATION, "invalid call identity")
                    log.warning("stream_refused", why="invalid CallSid or stream id")
                    return None
                return replace(start, frames_read=read)
    except TimeoutError:
        log.warning("stream_start_timeout", seconds=timeout_s)
        await refuse(phone, WSCloseCode.POLICY_VIOLATION, "no start")
        return None
    log.warning("stream_closed_before_start", ignored=ignored)
    await refuse(phone, WSCloseCode.PROTOCOL_ERROR, "protocol error: no start")
    return None


_CLOSE_CODES = {
    EndReason.PROTOCOL_ERROR: WSCloseCode.PROTOCOL_ERROR,
    EndReason.DRAINED: WSCloseCode.GOING_AWAY,
    EndReason.INTERNAL_ERROR: WSCloseCode.INTERNAL_ERROR,
}


async def _close_phone(phone: Channel, call: CallSession) -> None:
    """Close the phone socket with a named code: Twilio then requests the action callback."""
    if phone.closed:
        return
    reason = call.end_reason or EndReason.INTERNAL_ERROR
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await phone.close(_CLOSE_CODES.get(reason, WSCloseCode.OK), reason.value)
    except (TimeoutError, OSError, ChannelClosed):  # a cancelled close drops the connection
        log.warning("phone_close_slow")
