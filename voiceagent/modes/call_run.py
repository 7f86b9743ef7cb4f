"""A call as its mode sees it: what the phone's first frame said (`CallStart`), the call in
flight (`CallRun`: phone, session, plan, services) and the `<Parameter>`s every stream of a call
carries (`call_parameters`). `lifecycle.py` builds a `CallRun` and hands it to the mode."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from voiceagent.config import CallPlan
from voiceagent.errors import CallOver, ProtocolError, UpstreamFailure
from voiceagent.logging import clip, get_logger
from voiceagent.protocols.signature import stream_token
from voiceagent.runtime import Services
from voiceagent.session.call import CallSession, EndReason
from voiceagent.transport.channel import Channel

log = get_logger("voiceagent.call")

MAX_BAD_FRAMES = 50
"""Malformed phone frames tolerated per call (both modes) before the call is closed."""
LOGGED_BAD_FRAMES = 3
"""Malformed frames logged one by one per call; the rest are only counted."""


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


def call_parameters(
    plan: CallPlan, call_sid: str, services: Services, mode: str, **extra: str | None
) -> dict[str, str]:
    """The `<Parameter>`s every stream of a call carries: its number, mode, arm and the
    per-call token that proves `/voice` answered it (checked at `start` / `setup`)."""
    settings = services.settings
    parameters = {"number": plan.number, "mode": mode}
    if plan.arm is not None:
        parameters["arm"] = plan.arm
    parameters.update({k: v for k, v in extra.items() if v is not None})
    if settings.twilio_auth_token:  # over the number, mode, arm, attempt and failover origin
        parameters["token"] = stream_token(settings.twilio_auth_token, call_sid, parameters)
    return parameters
