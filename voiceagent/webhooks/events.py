"""Call events as the business receives them, and the outbox rows that carry them. No I/O.

`call.ended` is built when a call's leg ends and written to the outbox with the leg's end
record (one transaction); `call.recording_ready` follows when Twilio reports a recording after
the call's event was built. Each event has a stable id (the receiver deduplicates by it): the
same call always gets the same `call.ended` id, whichever leg wrote it.

A leg that another leg may follow (a realtime leg that failed upstream, on a number with a
fallback mode) writes its event as *provisional*: complete for a call that ended there, but
held for WEBHOOK_FAILOVER_HOLD_SECONDS. A failover leg holds it on while it runs and replaces
it with its own when it ends; a `<Connect action>` callback that ends the call instead releases
it (due at once). Holding and releasing write a *placeholder* (`placeholder_row`): it only
moves a provisional event's due time, and waits, without a body, for an event not written yet
(another instance's writer is a second behind). The rules: rows.py `_insert_event`.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from voiceagent.config_models import CallPlan
from voiceagent.session.call import CallSession, EndReason
from voiceagent.session.latency import TurnTiming

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
PROVISIONAL, PLACEHOLDER = "provisional", "placeholder"
DUE = (PENDING, PROVISIONAL)
"""Statuses of rows still to deliver."""
MAX_TURNS = 500
CALL_ENDED = "call.ended"


def event_id(call_sid: str, kind: str) -> str:
    """The stable id of a call's event of `kind` (`evt_` + 32 hex digits)."""
    return "evt_" + hashlib.sha256(f"{call_sid}:{kind}".encode()).hexdigest()[:32]


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")


def leg_may_follow(call: CallSession, plan: CallPlan) -> bool:
    """Whether another leg may follow this one: a realtime leg that failed upstream, on a
    number with a fallback mode, may hand over to a relay leg (whose event then replaces this
    leg's provisional one)."""
    return (
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
    """The `call.ended` event of a call whose leg just ended (as if no other leg followed)."""
    ended = call.ended if call.ended is not None else call.started + call.duration_s
    payload: dict[str, Any] = {
        "type": "call.ended",
        "event_id": event_id(call.call_sid, CALL_ENDED),
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


def outbox_row(
    payload: dict[str, Any], url: str, now: datetime | None = None, *, hold_s: float = 0.0
) -> dict[str, Any]:
    """The outbox row delivering `payload` to `url`: due at once, or (`hold_s` > 0) a
    provisional row due after `hold_s` seconds unless a later leg replaces it first."""
    now = now or datetime.now(UTC)
    return {
        "event_id": payload["event_id"],
        "call_sid": payload["call_sid"],
        "type": payload["type"],
        "url": url,
        "body": orjson.dumps(payload).decode(),
        "status": PROVISIONAL if hold_s > 0 else PENDING,
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now + timedelta(seconds=hold_s),
    }


def placeholder_row(call_sid: str, due: datetime, now: datetime | None = None) -> dict[str, Any]:
    """When the call's provisional `call.ended` is due: at once (`due` = now: no leg follows)
    or later (a failover leg is running). Never delivered itself; it has no body."""
    return {
        "event_id": event_id(call_sid, CALL_ENDED),
        "call_sid": call_sid,
        "type": CALL_ENDED,
        "url": "",
        "body": "",
        "status": PLACEHOLDER,
        "attempts": 0,
        "created_at": now or datetime.now(UTC),
        "next_attempt_at": due,
    }
