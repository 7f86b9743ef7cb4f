"""Call events as the business receives them, and the outbox rows that carry them. No I/O.

`call.ended` is built when a call's last leg ends and written to the outbox with the call's
end record (one transaction); `call.recording_ready` follows when Twilio reports a recording
after the call's event was built. Each event has a stable id (the receiver deduplicates by
it): the same call always gets the same `call.ended` id.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson

from voiceagent.config_models import CallPlan
from voiceagent.session.call import CallSession, EndReason
from voiceagent.session.latency import TurnTiming

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
MAX_TURNS = 500


def event_id(call_sid: str, kind: str) -> str:
    """The stable id of a call's event of `kind` (`evt_` + 32 hex digits)."""
    return "evt_" + hashlib.sha256(f"{call_sid}:{kind}".encode()).hexdigest()[:32]


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")


def is_last_leg(call: CallSession, plan: CallPlan) -> bool:
    """Whether no other leg follows this one: a realtime leg that failed upstream, on a number
    with a fallback mode, hands over to a relay leg (which then sends the call's event)."""
    return not (
        call.end_reason is EndReason.UPSTREAM_FAILED
        and call.failover_from is None
        and plan.fallback_mode not in (None, plan.mode)
    )


def _turns(call: CallSession) -> list[dict[str, Any]]:
    """Caller and agent turns in order; texts only where the number records transcripts."""
    out: list[dict[str, Any]] = []
    for turn in call.latency.turns[:MAX_TURNS]:
        at = _iso(call.started_wall + (turn.started - call.started))
        if turn.kind != "greeting":
            caller: dict[str, Any] = {"role": "caller", "at": at}
            if call.record_transcripts:
                caller["text"] = turn.user_text
            out.append(caller)
        out.append(_agent_turn(call, turn, at))
    return out


def _agent_turn(call: CallSession, turn: TurnTiming, at: str) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "role": "agent",
        "kind": turn.kind,
        "at": at,
        "response_ms": turn.response_ms,
        "interrupted": turn.interrupted,
    }
    if call.record_transcripts:
        agent["text"] = turn.agent_text  # what the caller heard of the reply
    return agent


def call_ended_payload(
    call: CallSession, plan: CallPlan, facts: dict[str, str], recording: dict[str, Any] | None
) -> dict[str, Any]:
    """The `call.ended` event of a call whose last leg just ended."""
    ended = call.ended if call.ended is not None else call.started + call.duration_s
    payload: dict[str, Any] = {
        "type": "call.ended",
        "event_id": event_id(call.call_sid, "call.ended"),
        "call_sid": call.call_sid,
        "from": facts.get("from", ""),
        "to": facts.get("to", plan.number),
        "direction": facts.get("direction", "inbound"),
        "number": plan.number,
        "mode": call.mode,
        "arm": call.arm,
        "experiment": call.experiment,
        "started_at": _iso(call.started_wall),
        "ended_at": _iso(call.started_wall + (ended - call.started)),
        "duration_s": call.duration_s,
        "reason": (call.end_reason or EndReason.INTERNAL_ERROR).value,
        "ended_by": call.ended_by,
        "transfer": call.transfer,
        "failover_from": call.failover_from,
        "variables": dict(plan.variables),
        "turns": _turns(call),
        "tool_calls": list(call.tool_log),
        "recording_url": (recording or {}).get("url"),
    }
    if recording:
        payload["recording"] = recording
    return payload


def recording_ready_payload(
    call_sid: str, number: str, recording: dict[str, Any]
) -> dict[str, Any]:
    """The `call.recording_ready` event: the recording came after the call's event."""
    return {
        "type": "call.recording_ready",
        "event_id": event_id(call_sid, "call.recording_ready"),
        "call_sid": call_sid,
        "number": number,
        "recording_url": recording.get("url"),
        "recording": recording,
    }


def outbox_row(payload: dict[str, Any], url: str, now: datetime | None = None) -> dict[str, Any]:
    """The outbox row delivering `payload` to `url` (due at once)."""
    now = now or datetime.now(UTC)
    return {
        "event_id": payload["event_id"],
        "call_sid": payload["call_sid"],
        "type": payload["type"],
        "url": url,
        "body": orjson.dumps(payload).decode(),
        "status": PENDING,
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
    }
