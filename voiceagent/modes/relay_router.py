"""relay-router: Twilio ConversationRelay (STT, playback) ↔ Inworld Router (LLM + TTS over SSE).

`/voice` answers with `<Connect action><ConversationRelay>` (every setting explicit). Inside the
shared lifecycle, `converse` restores the conversation of an earlier leg (reconnect, failover),
greets, and pumps ConversationRelay messages through the call's `RelayCall` state machine
(session/relay_call.py), executing its commands: each `StartReply` is one streaming request of
the injected `RouterClient`, run as a task of the call's TaskGroup (at most one at a time; a new
one first lets a superseded one finish its clean-up), `AbortStream` cancels it; tool runs and
timers (`RunTool`, `CancelTool`, `Wake`) are `ToolTasks` of the same TaskGroup. `action`
answers the `<Connect action>` callback: the `<Dial>` of a transfer the agent made (its `end`
names the destination, the number comes from the call's plan), else a handoff per the
number's setting, one reconnect after a failed session, then an apology.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import urlencode

from voiceagent.config import CallPlan
from voiceagent.errors import CallOver, ProtocolError, UpstreamError
from voiceagent.logging import clip, get_logger
from voiceagent.modes.call_run import CallRun, CallStart, call_parameters
from voiceagent.modes.registry import ModeName, PhoneProtocol
from voiceagent.modes.relay_attributes import (
    declared_languages,
    failover_languages,
    relay_attributes,
)
from voiceagent.modes.relay_resume import (
    Checkpointer,
    apply_checkpoint,
    resume_point,
    resumed_voice,
)
from voiceagent.modes.relay_speaker import ClipSpeaker, TextSpeaker
from voiceagent.modes.tool_tasks import ToolTasks, call_toolbox
from voiceagent.modes.transfer import transfer_twiml
from voiceagent.protocols import conversation_relay as cr
from voiceagent.protocols import twiml
from voiceagent.protocols.inworld_router import AudioRequest, ChatMessage, ChatRequest
from voiceagent.runtime import Services
from voiceagent.session.commands import (
    AbortStream,
    CallCommand,
    ReportTurns,
    SendPhone,
    StartReply,
    StopCall,
)
from voiceagent.session.relay_call import RelayCall
from voiceagent.session.relay_ledger import InputLedger
from voiceagent.tools.builtins import with_builtins
from voiceagent.tools.handoff import handoff_destination

log = get_logger("voiceagent.relay")

RECONNECT_ATTEMPTS = 1


class RelayRouter:
    """The relay-router mode (registered as `relay-router`)."""

    name: ClassVar[ModeName] = ModeName.RELAY_ROUTER
    phone_protocol: ClassVar[PhoneProtocol] = "conversation-relay"
    ws_path: ClassVar[str] = "/conversation"
    phone_sends_continuously: ClassVar[bool] = False  # a listening caller sends nothing
    holds_realtime_session: ClassVar[bool] = False

    def twiml(
        self, plan: CallPlan, call_sid: str, services: Services, *,
        failover_from: str | None = None, attempt: int = 1,
    ) -> str:  # fmt: skip
        """`<Connect action><ConversationRelay>`; context travels in `<Parameter>`s.

        A failover leg (`failover_from`) carries on the failed mode's conversation and opens
        with the agent's `failover_greeting` instead of its greeting."""
        settings = services.settings
        query: dict[str, str] = {"mode": self.name}
        if attempt > 1:
            query["attempt"] = str(attempt)
        parameters = call_parameters(
            plan, call_sid, services, self.name, failover_from=failover_from,
            attempt=str(attempt) if attempt > 1 else None,
        )  # fmt: skip
        twilio_greets = plan.relay.greeting_source == "twilio" and (
            attempt == 1 or failover_from is not None
        )
        greeting = plan.agent.failover_greeting if failover_from else plan.agent.greeting
        return twiml.conversation_relay(
            settings.public_wss_url + self.ws_path,
            f"{settings.public_url}/voice/action?{urlencode(query)}",
            relay_attributes(plan.relay, greeting if twilio_greets else None),
            parameters,
            failover_languages(plan.relay),
            declared_languages(plan.agent.languages),
        )

    def read_start(self, raw: str | bytes) -> CallStart | None:
        message = cr.parse_inbound(raw)
        if not isinstance(message, cr.Setup):
            raise ProtocolError(f"{message.type} before setup")
        params = message.custom_parameters
        return CallStart(message.call_sid, params.get("number") or message.to, "", params)

    async def converse(self, run: CallRun) -> None:
        """Restore an earlier leg's conversation, greet, then serve until the caller leaves."""
        plan, call, params = run.plan, run.call, run.start.parameters
        call.failover_from = params.get("failover_from") or None
        first = params.get("attempt", "1") == "1" and call.failover_from is None
        checkpoint = await resume_point(run)
        if checkpoint is not None:  # Twilio reconnected this leg's dropped socket
            apply_checkpoint(run, checkpoint)
            first = False
        elif not first:
            outcome = await run.services.take_outcome(call.call_sid)
            call.history.restore(outcome.history if outcome is not None else ())
            log.info("relay_leg_restored", restored_messages=len(call.history))
        opening = checkpoint is None and (first or call.failover_from is not None)
        greeting = plan.agent.failover_greeting if call.failover_from else plan.agent.greeting
        machine = RelayCall(
            call, instructions=plan.agent.instructions, dtmf_template=plan.relay.dtmf_template,
            apology=plan.agent.apology,
            tools=bool(with_builtins(plan.agent)),
            ledger=InputLedger(checkpoint),
        )  # fmt: skip
        if checkpoint is not None:
            machine.voice = resumed_voice(run, checkpoint)
        if plan.relay.greeting_source == "twilio" and opening:
            call.history.open_assistant("greeting").text = greeting
        replies = _Replies(run, machine)
        try:
            async with asyncio.TaskGroup() as group:
                replies.open(group)
                try:
                    if plan.voicemail is not None:  # an outbound call reached a machine
                        await replies.execute(
                            machine.leave_message(plan.voicemail, time.monotonic())
                        )
                    elif plan.relay.greeting_source == "inworld" and opening and greeting:
                        await replies.execute(machine.greet(greeting))
                    if checkpoint is not None:
                        await replies.execute(machine.resume(time.monotonic()))
                        await replies.checkpointer.save()  # this leg's generation, at once
                    await _read(run, machine, replies)
                finally:
                    replies.stop()
        except* CallOver:
            pass  # the agent ended the call (its reason is on the CallSession)

    async def action(self, form: Mapping[str, str], services: Services) -> str:
        """ended → handoff TwiML; failed → one reconnect, then apology; completed → empty."""
        status, call_sid = form.get("SessionStatus", ""), form.get("CallSid", "")
        plan = await services.plan_for_call(call_sid, form.get("To", ""))
        config = services.config.current
        apology = plan.agent.apology if plan is not None else config.defaults.agent.apology
        handoff = bool(form.get("HandoffData"))
        log.info("relay_action", call_sid=clip(call_sid, 40), session_status=clip(status, 20),
                 handoff=handoff)  # fmt: skip
        await services.stores.call_state.drop_checkpoint(call_sid)  # the session is over
        if status == "failed":
            attempt = _int(form.get("attempt", "1"))
            log.warning("relay_session_failed", attempt=attempt,
                        error_code=clip(form.get("ErrorCode", ""), 20))  # fmt: skip
            if plan is not None and plan.mode == self.name and attempt <= RECONNECT_ATTEMPTS:
                return self.twiml(plan, call_sid, services, attempt=attempt + 1)
        # No leg follows: a failover leg that never ran leaves the failed leg's outcome here,
        # whose held `call.ended` goes now.
        services.call_ends_here(call_sid, await services.take_outcome(call_sid))
        destination = handoff_destination(form.get("HandoffData"))
        if status == "ended" and destination is not None:
            return transfer_twiml(plan, destination, call_sid)
        if status == "ended":
            target = plan.relay.handoff if plan is not None and handoff else None
            if target is None or target.type == "hangup" or target.number is None:
                return twiml.say_hangup("")
            return twiml.dial(target.number, target.message)
        return twiml.say_hangup(apology) if status == "failed" else twiml.empty()


async def _read(run: CallRun, machine: RelayCall, replies: _Replies) -> None:
    """ConversationRelay → machine → commands, until the caller's side closes."""
    phone, counters = run.phone, run.call.counters
    while (raw := await phone.receive()) is not None:
        counters.frames_in += 1
        try:
            commands = machine.receive_phone(cr.parse_inbound(raw), time.monotonic())
        except ProtocolError as exc:
            run.bad_frame(exc)
            continue
        if not await replies.execute(commands):
            return
        if commands:
            await replies.checkpointer.save()
    await replies.execute(machine.caller_left(phone.close_reason))


class _Replies:
    """Executes the machine's commands; holds the reply task (at most one streams)."""

    def __init__(self, run: CallRun, machine: RelayCall) -> None:
        self.run = run
        self.machine = machine
        self.group: asyncio.TaskGroup | None = None
        self.task: asyncio.Task[None] | None = None
        services, plan = run.services, run.plan
        toolbox = call_toolbox(plan, services)
        self.tools = toolbox.router_tools() if toolbox else None  # declared in each request
        self.tasks = ToolTasks(run, toolbox, machine, self.execute)
        self.checkpointer = Checkpointer(run, machine)
        self.speaker: ClipSpeaker | TextSpeaker = (
            TextSpeaker(services, machine, run.send_phone)
            if plan.relay.voice_source == "twilio"
            else ClipSpeaker(services, plan, machine, run.send_phone)
        )

    async def execute(self, commands: list[CallCommand]) -> bool:
        """Carry out `commands` in order; False once the call is over."""
        for command in commands:
            if isinstance(command, StartReply):
                assert self.group is not None
                previous, request = self.task, self._request(command)
                self.task = self.group.create_task(self._reply(command, request, previous))
            elif isinstance(command, AbortStream):
                if self.task is not None and not self.task.done():
                    self.task.cancel()
            elif isinstance(command, SendPhone):
                await self.run.send_phone(command.frame)
            elif isinstance(command, ReportTurns):
                self.run.report_turns()
            elif isinstance(command, StopCall):
                return False
            else:
                self.tasks.handles(command)
        return True

    def open(self, group: asyncio.TaskGroup) -> None:
        self.group = self.tasks.group = group

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.tasks.stop()

    def _request(self, command: StartReply) -> ChatRequest:
        agent, relay = self.run.plan.agent, self.run.plan.relay
        tools = self.tools if command.tool_choice is not None else None
        return ChatRequest(
            model=agent.llm_model, stream=True, temperature=agent.temperature,
            messages=[ChatMessage(**m) for m in command.messages],
            audio=None if relay.voice_source == "twilio"
            else AudioRequest(voice=self.machine.voice or agent.voice, model=agent.tts_model),
            tools=tools, tool_choice=command.tool_choice if tools else None,
        )  # fmt: skip

    async def _reply(
        self, command: StartReply, request: ChatRequest, previous: asyncio.Task[None] | None
    ) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])  # a superseded reply finishes its clean-up first
        rid, timing = command.response_id, self.run.call.latency.turns[-1]
        timing = next((t for t in self.run.call.latency.turns if t.response_id == rid), timing)
        try:
            calls = await self.speaker.speak(rid, request)
            await self.execute(self.machine.reply_spoken(rid, calls, time.monotonic()))
        except UpstreamError as exc:
            log.warning(
                "router_failed", kind=exc.kind.value, status=exc.status,
                error=clip(exc, 300), turn=timing.index,
            )  # fmt: skip
            await self.execute(self.machine.reply_failed(rid, exc.kind.value))
        finally:
            self.machine.reply_finished(rid)
            await self.checkpointer.save()


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 1
