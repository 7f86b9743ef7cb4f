"""relay-router: Twilio ConversationRelay (STT, playback) ↔ Inworld Router (LLM + TTS over SSE).

`/voice` answers with `<Connect action><ConversationRelay>` (every setting explicit). `serve`
waits for `setup`, resolves the call's plan from its `<Parameter>`s, speaks the greeting in the
number's Inworld voice (unless Twilio's `welcomeGreeting` does) and runs a
`RelayConversation` (relay_conversation.py) until the caller's side closes. `action` answers
the `<Connect action>` callback: a handoff per the number's setting, one reconnect after a
failed session, then an apology.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import urlencode

from voiceagent.config import CallPlan
from voiceagent.errors import ProtocolError
from voiceagent.logging import bind_call, get_logger
from voiceagent.modes import register
from voiceagent.modes.relay_conversation import RelayConversation
from voiceagent.protocols import conversation_relay as cr
from voiceagent.protocols import twiml
from voiceagent.runtime import Services
from voiceagent.session.call import CallSession, EndReason
from voiceagent.transport.channel import Channel

log = get_logger("voiceagent.relay")

SETUP_TIMEOUT_S = 10.0
"""How long Twilio has to send `setup` after the upgrade."""
MAX_FRAMES_BEFORE_SETUP = 10
RECONNECT_ATTEMPTS = 1


class RelayRouter:
    """The relay-router mode (registered as `relay-router`)."""

    name: ClassVar[str] = "relay-router"
    ws_path: ClassVar[str] = "/conversation"

    def twiml(
        self, plan: CallPlan, call_sid: str, services: Services, attempt: int = 1, *,
        failover_from: str | None = None,
    ) -> str:  # fmt: skip
        """`<Connect action><ConversationRelay>`; context travels in `<Parameter>`s.

        A failover leg (`failover_from`) carries on the failed mode's conversation and opens
        with the agent's `failover_greeting` instead of its greeting."""
        settings = services.settings
        parameters = {"number": plan.number, "mode": self.name}
        if plan.arm is not None:
            parameters["arm"] = plan.arm
        if failover_from is not None:
            parameters["failover_from"] = failover_from
        query = {"mode": self.name}
        if attempt > 1:
            parameters["attempt"] = query["attempt"] = str(attempt)
        twilio_greets = plan.relay.greeting_source == "twilio" and (
            attempt == 1 or failover_from is not None
        )
        return twiml.conversation_relay(
            settings.public_wss_url + self.ws_path,
            f"{settings.public_url}/voice/action?{urlencode(query)}",
            plan.relay,
            parameters,
            welcome_greeting=(
                (plan.agent.failover_greeting if failover_from else plan.agent.greeting)
                if twilio_greets
                else None
            ),
        )

    async def serve(self, phone: Channel, services: Services) -> None:
        """Run one call: wait for `setup`, converse, always end with one `call_ended` line."""
        setup = await _await_setup(phone)
        if setup is None:
            return
        params = setup.custom_parameters
        number = params.get("number") or setup.to
        plan = services.plan_for_stream(number, setup.call_sid)
        call = CallSession(
            call_sid=setup.call_sid, number=number, mode=self.name,
            arm=plan.arm if plan else None, experiment=plan.experiment if plan else None,
            record_transcripts=plan.record_transcripts if plan else False,
        )  # fmt: skip
        bind_call(setup.call_sid, number, self.name, arm=call.arm)
        services.sink.call_started(call)
        log.info("relay_setup", session_id=setup.session_id, attempt=params.get("attempt", "1"))
        try:
            if plan is None or plan.mode != self.name:
                call.end(EndReason.PROTOCOL_ERROR, "number not configured for this mode")
                log.warning("relay_without_plan", planned_mode=plan.mode if plan else None)
                await phone.close(1000, "no plan")
                return
            call.failover_from = params.get("failover_from") or None
            first = params.get("attempt", "1") == "1" and call.failover_from is None
            if not first:
                _restore_history(call, services)
            opening = first or call.failover_from is not None
            if call.failover_from is not None:
                plan = plan.model_copy(
                    update={"agent": plan.agent.model_copy(
                        update={"greeting": plan.agent.failover_greeting})}
                )  # fmt: skip
            if plan.relay.greeting_source == "twilio" and opening:
                call.history.open_assistant("greeting").text = plan.agent.greeting
            greet = plan.relay.greeting_source == "inworld" and opening
            await _converse(RelayConversation(phone, services, plan, call), call, greet)
        finally:
            call.end(EndReason.CALLER_DISCONNECTED, "conversation ended")
            services.finish_call(call, plan)
            log.info("call_ended", **call.summary())

    def action(self, form: Mapping[str, str], services: Services) -> str:
        """ended → handoff TwiML; failed → one reconnect, then apology; completed → empty."""
        status, call_sid = form.get("SessionStatus", ""), form.get("CallSid", "")
        config = services.config.current
        plan = config.plan_for(form.get("To", ""), call_sid)
        apology = plan.agent.apology if plan is not None else config.defaults.agent.apology
        handoff = bool(form.get("HandoffData"))
        log.info("relay_action", call_sid=call_sid, session_status=status, handoff=handoff)
        if status == "ended":
            services.outcomes.take(call_sid)
            target = plan.relay.handoff if plan is not None and handoff else None
            if target is None or target.type == "hangup" or target.number is None:
                return twiml.say_hangup("")
            return twiml.dial(target.number, target.message)
        if status == "failed":
            attempt = _int(form.get("attempt", "1"))
            log.warning(
                "relay_session_failed", call_sid=call_sid, attempt=attempt,
                error_code=form.get("ErrorCode"), error=form.get("ErrorMessage"),
            )  # fmt: skip
            if plan is not None and plan.mode == self.name and attempt <= RECONNECT_ATTEMPTS:
                return self.twiml(plan, call_sid, services, attempt=attempt + 1)
        services.outcomes.take(call_sid)
        return twiml.say_hangup(apology) if status == "failed" else twiml.empty()


def _restore_history(call: CallSession, services: Services) -> None:
    """A reconnect after a failed session carries on the conversation this instance held."""
    outcome = services.outcomes.take(call.call_sid)
    for message in outcome.history if outcome is not None else ():
        if message["role"] == "user":
            call.history.add_user(message["content"])
        elif message["role"] == "assistant":
            call.history.open_assistant("restored").text = message["content"]
    log.info("relay_reconnected", restored_messages=len(call.history))


async def _converse(conversation: RelayConversation, call: CallSession, greet: bool) -> None:
    try:
        await conversation.run(greet)
    except asyncio.CancelledError:
        call.end(EndReason.DRAINED, "server shutting down")
        raise
    except Exception as exc:  # the top of a call: log with traceback, close cleanly
        log.error("call_crashed", exc_info=exc)
        call.end(EndReason.INTERNAL_ERROR, type(exc).__name__)


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 1


async def _await_setup(phone: Channel) -> cr.Setup | None:
    """Read until `setup`; other frames before it are logged and ignored (then closed)."""
    try:
        async with asyncio.timeout(SETUP_TIMEOUT_S):
            for _ in range(MAX_FRAMES_BEFORE_SETUP):
                raw = await phone.receive()
                if raw is None:
                    log.info("relay_ended_before_setup", reason=phone.close_reason)
                    return None
                try:
                    message = cr.parse_inbound(raw)
                except ProtocolError as exc:
                    log.warning("relay_message_invalid", error=str(exc)[:200], before_setup=True)
                    continue
                if isinstance(message, cr.Setup):
                    return message
                log.warning("relay_message_before_setup", type=message.type)
    except TimeoutError:
        log.warning("relay_setup_timeout", seconds=SETUP_TIMEOUT_S)
    await phone.close(1000, "no setup")
    return None


register(RelayRouter())
