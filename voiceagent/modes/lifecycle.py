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
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from aiohttp import WSCloseCode

from voiceagent.config import E164, CallPlan
from voiceagent.errors import (
    CallOver,
    ChannelClosed,
    ProtocolError,
    UpstreamError,
    UpstreamFailure,
)
from voiceagent.logging import bind_call, clip, get_logger
from voiceagent.modes import MODES
from voiceagent.protocols.signature import is_call_sid, stream_token, verify_stream_token
from voiceagent.runtime import Services
from voiceagent.session.call import CallSession, EndReason
from voiceagent.store.live.realtime_budget import hold
from voiceagent.transport.channel import Channel
from voiceagent.transport.watch import watch

if TYPE_CHECKING:
    from voiceagent.modes.base import Mode

log = get_logger("voiceagent.call")

START_TIMEOUT_S = 10.0
"""How long Twilio has to send `start` / `setup` after the upgrade."""
MAX_FRAMES_BEFORE_START = 10
"""Frames other than the start frame tolerated before it (then the stream is refused)."""
MAX_BAD_FRAMES = 50
"""Malformed phone frames tolerated per call (both modes) before the call is closed."""
LOGGED_BAD_FRAMES = 3
"""Malformed frames logged one by one per call; the rest are only counted."""
CLOSE_TIMEOUT_S = 2.0
SESSION_BUDGET_MODES = frozenset({"realtime-passthrough"})
"""Modes whose calls each hold one Inworld Realtime session (counted by the shared budget)."""
_SID = re.compile(r"^[A-Za-z0-9]{1,64}$")


@dataclass(frozen=True, slots=True)
class CallStart:
    """What the first frame of a phone socket says about its call."""

    call_sid: str
    number: str
    stream_sid: str = ""
    parameters: Mapping[str, str] = field(default_factory=dict)
    frames_read: int = 1  # the phone frames read up to and including this one


@dataclass
class CallRun:
    """One call in flight, as the mode sees it: the phone, the session, the plan, services."""

    phone: Channel
    call: CallSession
    plan: CallPlan
    services: Services
    start: CallStart

    async def send_phone(self, frame: str) -> None:
        """Send one frame to Twilio (every frame out is counted in `frames_out`)."""
        await self.phone.send(frame)
        self.call.counters.frames_out += 1

    def bad_frame(self, exc: ProtocolError, where: str = "phone") -> None:
        """Count a malformed frame; past the call's budget the call ends (CallOver)."""
        counters = self.call.counters
        counters.bad_frames += 1
        if counters.bad_frames <= LOGGED_BAD_FRAMES:
            log.warning(f"{where}_bad_frame", error=clip(exc, 200), count=counters.bad_frames)
        if counters.bad_frames > MAX_BAD_FRAMES:
            self.call.end(EndReason.PROTOCOL_ERROR, "too many malformed frames")
            raise CallOver

    def upstream_failed(self, kind: UpstreamFailure, detail: str) -> None:
        """Record an upstream failure (the first reason of the call wins)."""
        if self.call.end_reason is None:
            self.call.upstream_failure = kind.value
            log.warning("upstream_failed", failure=kind.value, detail=clip(detail, 200))
        self.call.end(EndReason.UPSTREAM_FAILED, detail)

    def report_turns(self, final: bool = False) -> None:
        """Hand finished turns to the sink: all but the current one (all when the call ends).
        A turn's agent text is what the caller heard of its response, known only by then."""
        latency = self.call.latency
        for turn in latency.turns:
            if turn.reported or (turn is latency.current and not final):
                continue
            turn.reported = True
            if self.call.record_transcripts:
                turn.agent_text = self.call.history.heard_text(turn.response_id)
            self.services.sink.turn_finished(self.call, turn)
            log.info("turn_finished", index=turn.index, kind=turn.kind, **turn.figures())


async def serve_call(phone: Channel, services: Services, mode: Mode) -> None:
    """Run one call of `mode` on an accepted, signature-checked phone socket."""
    start = await _await_start(phone, mode)
    if start is None:
        return
    plan = await services.plan_for_call(start.call_sid, start.number)
    number = start.number if E164.match(start.number) else clip(start.number, 20)
    call = CallSession(
        call_sid=start.call_sid, number=number, mode=mode.name,
        arm=plan.arm if plan else None, experiment=plan.experiment if plan else None,
        stream_sid=start.stream_sid, record_transcripts=bool(plan and plan.record_transcripts),
    )  # fmt: skip
    call.counters.frames_in = start.frames_read
    bind_call(start.call_sid, number, mode.name, arm=call.arm)
    refusal = _refusal(start, plan, mode, services)
    if refusal is not None or plan is None:
        log.warning("stream_refused", why=refusal, planned_mode=plan.mode if plan else None)
        await phone.close(WSCloseCode.POLICY_VIOLATION, refusal or "no plan")
        return
    failover_from = start.parameters.get("failover_from")
    call.failover_from = failover_from if failover_from in MODES else None
    services.sink.call_started(call)  # a failover leg is recorded and counted as one
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
        await services.finish_call(call)  # before the phone closes: the callback follows
        log.info("call_ended", **call.summary())
        await _close_phone(phone, call)


async def _supervised(run: CallRun, mode: Mode) -> None:
    """The mode's conversation, with the phone watched for silence and stuck sends; a realtime
    call holds its lease of the shared Inworld session budget (renewed, released at the end)."""
    services, sid = run.services, run.call.call_sid
    settings = services.settings
    idle = settings.phone_idle_timeout if mode.phone_sends_continuously else None

    def phone_gone(reason: str) -> None:
        run.call.end(EndReason.CALLER_DISCONNECTED, reason)

    phone_watch = watch(run.phone, idle, settings.send_timeout, "phone", phone_gone)
    watchers = [asyncio.create_task(phone_watch)]
    if mode.name in SESSION_BUDGET_MODES:
        watchers.append(asyncio.create_task(hold(services.budget, sid)))
    try:
        await mode.converse(run)
    finally:
        for watcher in watchers:
            watcher.cancel()
        if mode.name in SESSION_BUDGET_MODES:
            await services.budget.release(sid)


def _refusal(start: CallStart, plan: CallPlan | None, mode: Mode, services: Services) -> str | None:
    """Why this stream may not run (None: it may)."""
    settings = services.settings
    if not settings.insecure_skip_signature and not verify_stream_token(
        settings.twilio_auth_token, start.call_sid, start.parameters.get("token")
    ):
        return "missing or invalid stream token"
    if plan is None:
        return "number not configured"
    if plan.mode != mode.name:
        return "number not configured for this mode"
    return None


async def _await_start(phone: Channel, mode: Mode) -> CallStart | None:
    """Read until the mode's start frame; a few other frames before it are tolerated."""
    ignored = read = 0
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
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
                    await phone.close(WSCloseCode.POLICY_VIOLATION, "invalid call identity")
                    log.warning("stream_refused", why="invalid CallSid or stream id")
                    return None
                return replace(start, frames_read=read)
    except TimeoutError:
        log.warning("stream_start_timeout", seconds=START_TIMEOUT_S)
        await phone.close(WSCloseCode.POLICY_VIOLATION, "no start")
        return None
    log.warning("stream_closed_before_start", ignored=ignored)
    await phone.close(WSCloseCode.PROTOCOL_ERROR, "protocol error: no start")
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


def call_parameters(
    plan: CallPlan, call_sid: str, services: Services, mode: str, **extra: str | None
) -> dict[str, str]:
    """The `<Parameter>`s every stream of a call carries: its number, mode, arm and the
    per-call token that proves `/voice` answered it (checked at `start` / `setup`)."""
    settings = services.settings
    parameters = {"number": plan.number, "mode": mode}
    if plan.arm is not None:
        parameters["arm"] = plan.arm
    if settings.twilio_auth_token:
        parameters["token"] = stream_token(settings.twilio_auth_token, call_sid)
    parameters.update({k: v for k, v in extra.items() if v is not None})
    return parameters
