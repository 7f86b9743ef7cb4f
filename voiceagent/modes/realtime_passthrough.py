"""realtime-passthrough: Twilio Media Streams bridged to Inworld Realtime, µ-law both ways.

`/voice` answers with `<Connect action><Stream>` whose `<Parameter>`s carry the call's context
and token. Inside the shared lifecycle, `converse` opens the call's Inworld session (through the
injected `RealtimeConnector`), sends one `session.update`, and runs two pump loops around the
call's `RealtimeCall` state machine (session/realtime_call.py): each loop reads one side, feeds
the machine, and sends what it returns; tool runs and timers are tasks of the same TaskGroup
(`ToolTasks`), never awaited by a pump. `action` answers the `<Connect action>` callback: the
`<Dial>` of a transfer the agent made (the destination looked up in the call's plan), or an
apology or the failover to the number's `fallback_mode` after an upstream failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping
from typing import ClassVar

from voiceagent.config import CallPlan
from voiceagent.errors import CallOver, ChannelClosed, ProtocolError
from voiceagent.logging import clip, get_logger
from voiceagent.modes.call_run import CallRun, CallStart, call_parameters
from voiceagent.modes.realtime_filler import gap_filler
from voiceagent.modes.realtime_reconnect import reconnecting
from voiceagent.modes.realtime_setup import greeting_frames, session_update, voicemail_frames
from voiceagent.modes.registry import ModeName, PhoneProtocol
from voiceagent.modes.tool_tasks import ToolTasks, call_toolbox
from voiceagent.modes.transfer import transfer_twiml
from voiceagent.protocols import inworld_realtime as rt
from voiceagent.protocols import twilio_media as tm
from voiceagent.protocols import twiml
from voiceagent.runtime import Services
from voiceagent.session.call import EndReason
from voiceagent.session.commands import (
    CallCommand,
    ReportTurns,
    SendPhone,
    SendUpstream,
    StopCall,
)
from voiceagent.session.realtime_call import RealtimeCall
from voiceagent.store.live.call_state import CallOutcome
from voiceagent.tools.builtins import with_builtins
from voiceagent.transport.channel import Channel
from voiceagent.transport.watch import watch

log = get_logger("voiceagent.realtime")

APOLOGY_REASONS = frozenset({EndReason.UPSTREAM_FAILED, EndReason.INTERNAL_ERROR})
CLOSE_TIMEOUT_S = 1.0
LOGGED_UPSTREAM_BAD_FRAMES = 3


class RealtimePassthrough:
    """The realtime-passthrough mode."""

    name: ClassVar[ModeName] = ModeName.REALTIME_PASSTHROUGH
    phone_protocol: ClassVar[PhoneProtocol] = "media-streams"
    ws_path: ClassVar[str] = "/media-stream"
    phone_sends_continuously: ClassVar[bool] = True  # media frames flow all call long
    holds_realtime_session: ClassVar[bool] = True

    def twiml(
        self, plan: CallPlan, call_sid: str, services: Services, *,
        failover_from: str | None = None,
    ) -> str:  # fmt: skip
        """`<Connect action><Stream>`; the stream gets its context from `<Parameter>`s."""
        settings = services.settings
        parameters = call_parameters(
            plan, call_sid, services, self.name, failover_from=failover_from
        )
        return twiml.stream(
            settings.public_wss_url + self.ws_path,
            f"{settings.public_url}/voice/action?mode={self.name}",
            parameters,
        )

    def read_start(self, raw: str | bytes) -> CallStart | None:
        msg = tm.read_inbound(raw)
        if isinstance(msg, tm.Connected):
            return None
        if isinstance(msg, bytes):
            raise ProtocolError("media before start")
        if not isinstance(msg, tm.Start):
            raise ProtocolError(f"{msg.event} before start")
        info = msg.start
        params = info.custom_parameters
        return CallStart(info.call_sid, params.get("number", ""), msg.stream_sid, params)

    async def converse(self, run: CallRun) -> None:
        """Bridge the call to its Inworld session until either side ends."""
        plan, settings = run.plan, run.services.settings
        greeting = greeting_frames(plan) if plan.realtime.greet_first else ()
        if plan.voicemail is not None:  # an outbound call reached a machine: the message only
            greeting = voicemail_frames(plan.voicemail)
        machine = RealtimeCall(
            run.call, append_ms=plan.realtime.append_ms, mark_ms=plan.realtime.mark_ms,
            greeting=greeting,
            tools=bool(with_builtins(plan.agent)),
            dtmf_template=plan.realtime.dtmf_template, vad=plan.agent.turn_detection.type,
            filler=gap_filler(run),
        )  # fmt: skip
        if plan.voicemail is not None:
            machine.leave_message(time.monotonic())
        started = time.monotonic()
        first = await run.services.realtime.connect(run.call.call_sid)
        upstream = reconnecting(run, machine, first)  # a drop is not the end of the call
        log.info("upstream_connected", ms=round((time.monotonic() - started) * 1e3, 1))
        try:
            with contextlib.suppress(ChannelClosed):  # closed at once (e.g. over capacity):
                await upstream.send(session_update(plan))  # its last frames still tell why
            idle, send_timeout = settings.upstream_idle_timeout, settings.send_timeout
            commands = _Commands(run, upstream, machine)
            async with asyncio.TaskGroup() as tg:
                commands.open(tg)
                tg.create_task(_pump_phone(run, machine, commands))
                tg.create_task(_pump_upstream(run, machine, commands))
                tg.create_task(watch(upstream, idle, send_timeout, "upstream"))
        except* CallOver:
            pass
        finally:
            upstream.release()
            await _close(upstream)

    async def action(self, form: Mapping[str, str], services: Services) -> str:
        """After an upstream failure: fail over; else the call ends here (its held `call.ended`
        goes now): after a transfer the agent made `<Dial>`, after a failure an apology,
        after any other end nothing."""
        call_sid = form.get("CallSid", "")
        outcome = await services.take_outcome(call_sid)
        plan = await services.plan_for_call(call_sid, form.get("To", ""))
        if (
            plan is not None and outcome is not None and outcome.transfer is None
            and outcome.reason is EndReason.UPSTREAM_FAILED
        ):  # fmt: skip
            failover = await _failover(plan, call_sid, outcome, services)
            if failover is not None:
                return failover
        services.call_ends_here(call_sid, outcome)
        if outcome is not None and outcome.transfer is not None:
            return transfer_twiml(plan, outcome.transfer, call_sid)
        if outcome is None or outcome.reason not in APOLOGY_REASONS:
            return twiml.empty()
        config = services.config.current
        apology = plan.agent.apology if plan is not None else config.defaults.agent.apology
        log.info("action_apology", call_sid=clip(call_sid, 40), reason=outcome.reason.value)
        return twiml.say_hangup(apology)


class _Commands:
    """The call's one executor: every frame and command the machine returns goes out here, in
    order (urgent control comes first in a list); tool runs and timers go to the call's
    `ToolTasks`. Frames to Twilio are counted in `CallRun.send_phone`."""

    def __init__(self, run: CallRun, upstream: Channel, machine: RealtimeCall) -> None:
        self.run = run
        self.upstream = upstream
        self.tasks: ToolTasks | None = None
        toolbox = call_toolbox(run.plan, run.services)  # with `set_language` if it has languages
        if toolbox or run.plan.voicemail is not None:  # a voicemail leg: timers
            self.tasks = ToolTasks(run, toolbox, machine, self.execute)

    def open(self, group: asyncio.TaskGroup) -> None:
        """Tool runs and timers become tasks of the call's TaskGroup."""
        if self.tasks is not None:
            self.tasks.group = group

    async def send_upstream(self, frames: Iterable[str]) -> None:
        """Frames for Inworld (caller audio appends, the end of the caller's audio)."""
        for frame in frames:
            await self.upstream.send(frame)

    async def send_phone(self, frames: Iterable[str]) -> None:
        """Frames for Twilio (agent audio and its marks)."""
        for frame in frames:
            await self.run.send_phone(frame)

    async def execute(self, commands: list[CallCommand]) -> bool:
        """False once the call is over."""
        for command in commands:
            if isinstance(command, SendPhone):
                await self.run.send_phone(command.frame)
            elif isinstance(command, SendUpstream):
                await self.upstream.send(command.frame)
            elif isinstance(command, ReportTurns):
                self.run.report_turns()
            elif isinstance(command, StopCall):
                return False
            elif self.tasks is not None:
                self.tasks.handles(command)
        return True


async def _pump_phone(run: CallRun, machine: RealtimeCall, commands: _Commands) -> None:
    """Twilio → machine → Inworld: one reader (`read_inbound`: a media frame is its µ-law
    bytes, the hot path; any other event its model), one executor."""
    phone, counters = run.phone, run.call.counters
    read, receive_media = tm.read_inbound, machine.receive_media
    try:
        while (raw := await phone.receive()) is not None:
            counters.frames_in += 1
            try:
                if not isinstance(raw, str):
                    raise ProtocolError("binary frame")
                msg = read(raw)
                if msg.__class__ is bytes:  # caller audio
                    await commands.send_upstream(receive_media(msg))
                else:
                    todo = machine.receive_phone(msg, time.monotonic())  # type: ignore[arg-type]
                    if not await commands.execute(todo):
                        break
            except ProtocolError as exc:
                run.bad_frame(exc)
        run.call.end(EndReason.CALLER_DISCONNECTED, phone.close_reason)
        await commands.send_upstream(machine.phone_ended())
    except ChannelClosed:
        _channel_lost(run, machine, commands.upstream)
    raise CallOver


async def _pump_upstream(run: CallRun, machine: RealtimeCall, commands: _Commands) -> None:
    """Inworld → machine → Twilio: one reader (`read_server_event`), one executor."""
    upstream, counters, read = commands.upstream, run.call.counters, rt.read_server_event
    audio_type, transcript_type = rt.AudioDelta, rt.TranscriptDelta
    try:
        while (raw := await upstream.receive()) is not None:
            if not isinstance(raw, str):
                continue
            try:
                event = read(raw)
            except ProtocolError as exc:
                counters.upstream_errors += 1
                if counters.upstream_errors <= LOGGED_UPSTREAM_BAD_FRAMES:
                    log.warning("upstream_bad_frame", error=clip(exc, 200))
                continue
            now = time.monotonic()
            if event.__class__ is audio_type:
                await commands.send_phone(machine.receive_audio(event, now))
            elif event.__class__ is transcript_type:
                machine.receive_transcript(event)
            elif not await commands.execute(machine.receive_upstream(event, now)):  # type: ignore[arg-type]
                raise CallOver
        machine.upstream_closed(upstream.close_reason)
    except ChannelClosed:
        _channel_lost(run, machine, upstream)
    raise CallOver


def _channel_lost(run: CallRun, machine: RealtimeCall, upstream: Channel) -> None:
    if upstream.closed and not run.phone.closed:
        machine.upstream_closed(upstream.close_reason or "upstream closed while sending")
    else:
        run.call.end(EndReason.CALLER_DISCONNECTED, "phone closed while sending")


async def _close(upstream: Channel) -> None:
    """Close the Inworld session within a second, whatever state it is in."""
    if upstream.closed:
        return
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await upstream.close()
    except (TimeoutError, OSError, ChannelClosed):  # a cancelled close drops the connection
        log.warning("upstream_close_slow")


async def _failover(
    plan: CallPlan, call_sid: str, outcome: CallOutcome, services: Services
) -> str | None:
    """Hand the call to the number's fallback mode (ConversationRelay + Router), keeping
    the conversation so far; None when the number names no usable fallback."""
    fallback = plan.fallback_mode
    mode = services.modes.get(fallback)
    if mode is None or mode.holds_realtime_session:
        return None
    leg = plan.model_copy(update={"mode": fallback})
    await services.remember_plan(call_sid, leg)
    await services.keep_outcome(call_sid, outcome)  # its history seeds the new leg
    log.warning(
        "failover", call_sid=clip(call_sid, 40), from_mode=RealtimePassthrough.name,
        to_mode=fallback, upstream_failure=outcome.upstream_failure,
    )  # fmt: skip
    return mode.twiml(leg, call_sid, services, failover_from=RealtimePassthrough.name)
