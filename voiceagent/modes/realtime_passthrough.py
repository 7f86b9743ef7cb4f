"""realtime-passthrough: Twilio Media Streams bridged to Inworld Realtime, µ-law both ways.

``/voice`` answers with ``<Connect action><Stream>`` whose ``<Parameter>``s name the number,
arm and mode; ``serve`` waits for Twilio's ``start``, resolves the call's plan, and runs a
``Bridge`` (realtime_bridge.py) until either side ends; ``action`` answers the
``<Connect action>`` callback by why the stream ended (an apology after an upstream failure).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import ClassVar

from voiceagent.config import CallPlan
from voiceagent.errors import ProtocolError, UpstreamError
from voiceagent.logging import bind_call, get_logger
from voiceagent.modes import MODES, register
from voiceagent.modes.realtime_bridge import Bridge
from voiceagent.protocols import twilio_media as tm
from voiceagent.protocols import twiml
from voiceagent.runtime import CallOutcome, Services
from voiceagent.session.call import CallSession, EndReason
from voiceagent.transport.channel import Channel

log = get_logger("voiceagent.realtime")

START_TIMEOUT_S = 10.0
"""How long Twilio has to send ``start`` after the upgrade."""
MAX_FRAMES_BEFORE_START = 50
"""Frames other than ``connected`` tolerated before ``start`` (then the stream is closed)."""
APOLOGY_REASONS = frozenset({EndReason.UPSTREAM_FAILED, EndReason.INTERNAL_ERROR})


class RealtimePassthrough:
    """The realtime-passthrough mode (registered as ``realtime-passthrough``)."""

    name: ClassVar[str] = "realtime-passthrough"
    ws_path: ClassVar[str] = "/media-stream"

    def twiml(
        self, plan: CallPlan, call_sid: str, services: Services, *,
        failover_from: str | None = None,
    ) -> str:  # fmt: skip
        """``<Connect action><Stream>``; the stream gets its context from ``<Parameter>``s."""
        settings = services.settings
        parameters = {"number": plan.number, "mode": self.name}
        if failover_from is not None:
            parameters["failover_from"] = failover_from
        if plan.arm is not None:
            parameters["arm"] = plan.arm
        return twiml.stream(
            settings.public_wss_url + self.ws_path,
            f"{settings.public_url}/voice/action?mode={self.name}",
            parameters,
        )

    async def serve(self, phone: Channel, services: Services) -> None:
        """Run one call: wait for ``start``, bridge to Inworld, always end with ``call_ended``."""
        start = await _await_start(phone)
        if start is None:
            return
        info = start.start
        number = info.custom_parameters.get("number", "")
        plan = services.plan_for_stream(number, info.call_sid)
        call = CallSession(
            call_sid=info.call_sid,
            number=number,
            mode=self.name,
            arm=plan.arm if plan else None,
            experiment=plan.experiment if plan else None,
            stream_sid=start.stream_sid,
            record_transcripts=plan.record_transcripts if plan else False,
        )
        bind_call(info.call_sid, number, self.name, arm=call.arm)
        services.sink.call_started(call)
        log.info("stream_started", stream_sid=start.stream_sid)
        if plan is None or plan.mode != self.name:
            call.end(EndReason.PROTOCOL_ERROR, "number not configured for this mode")
            log.warning("stream_without_plan", planned_mode=plan.mode if plan else None)
            _finish(services, call, plan)
            await phone.close(1000, "no plan")
            return
        if plan.realtime.greet_first:
            call.latency.start_turn(call.started, "greeting")
        await _bridge(Bridge(phone, call, plan, services), services)

    def action(self, form: Mapping[str, str], services: Services) -> str:
        """After an upstream failure: apologise and hang up; after a normal end: nothing."""
        call_sid = form.get("CallSid", "")
        outcome = services.outcomes.take(call_sid)
        if outcome is None or outcome.reason not in APOLOGY_REASONS:
            return twiml.empty()
        plan = services.plan_for_stream(form.get("To", ""), call_sid)
        if plan is not None and outcome.reason is EndReason.UPSTREAM_FAILED:
            failover = _failover(plan, call_sid, outcome, services)
            if failover is not None:
                return failover
        config = services.config.current
        apology = plan.agent.apology if plan is not None else config.defaults.agent.apology
        log.info("action_apology", call_sid=call_sid, reason=outcome.reason.value)
        return twiml.say_hangup(apology)


def _failover(
    plan: CallPlan, call_sid: str, outcome: CallOutcome, services: Services
) -> str | None:
    """Hand the call to the number's fallback mode (ConversationRelay + Router), keeping
    the conversation so far; None when the number names no usable fallback."""
    fallback = plan.fallback_mode
    if fallback is None or fallback == RealtimePassthrough.name or fallback not in MODES:
        return None
    leg = plan.model_copy(update={"mode": fallback})
    services.plans.record(call_sid, leg)
    services.outcomes.record(call_sid, outcome)  # its history seeds the new leg
    log.warning(
        "failover", call_sid=call_sid, from_mode=RealtimePassthrough.name, to_mode=fallback,
        upstream_failure=outcome.upstream_failure,
    )  # fmt: skip
    relay = MODES[fallback]
    return relay.twiml(leg, call_sid, services, failover_from=RealtimePassthrough.name)


async def _bridge(bridge: Bridge, services: Services) -> None:
    call = bridge.call
    try:
        await bridge.run()
    except UpstreamError as exc:
        bridge.refused(exc)
    except asyncio.CancelledError:
        call.end(EndReason.DRAINED, "server shutting down")
        raise
    except Exception as exc:  # the top of a call: log with traceback, close cleanly
        log.error("call_crashed", exc_info=exc)
        call.end(EndReason.INTERNAL_ERROR, type(exc).__name__)
    finally:
        call.end(EndReason.CALLER_DISCONNECTED, "bridge ended")
        await bridge.close_upstream()
        _finish(services, call, bridge.plan)  # before the phone closes: the callback follows
        await bridge.close_phone()


def _finish(services: Services, call: CallSession, plan: CallPlan | None) -> None:
    services.finish_call(call, plan)
    log.info("call_ended", **call.summary())


async def _await_start(phone: Channel) -> tm.Start | None:
    """Read until ``start``; frames before it are logged and ignored (then the stream closed)."""
    ignored = 0
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while ignored <= MAX_FRAMES_BEFORE_START:
                raw = await phone.receive()
                if raw is None:
                    log.info("stream_ended_before_start", reason=phone.close_reason)
                    return None
                try:
                    if not isinstance(raw, str):
                        raise ProtocolError("binary frame")
                    msg = tm.parse_inbound(raw)
                except ProtocolError as exc:
                    ignored += 1
                    log.warning("phone_bad_frame", error=str(exc)[:200], before_start=True)
                    continue
                if isinstance(msg, tm.Start):
                    return msg
                if not isinstance(msg, tm.Connected):
                    ignored += 1
                    log.warning("phone_frame_before_start", frame=msg.event)
    except TimeoutError:
        log.warning("stream_start_timeout", seconds=START_TIMEOUT_S)
        await phone.close(1000, "no start")
        return None
    log.warning("stream_closed_before_start", ignored=ignored)
    await phone.close(1000, "protocol error: no start")
    return None


register(RealtimePassthrough())
