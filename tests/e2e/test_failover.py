"""Failover across modes: Inworld Realtime failing hands the same call to the relay mode."""

from __future__ import annotations

from typing import Any

from tests.rig import FAILOVER, StartRig, realtime_options
from voiceagent.sim.script import HangUp, Listen, Say, Step


async def _fail_then_relay(rig: Any, script: list[Step]) -> tuple[Any, Any]:
    """A Media Streams call that fails over, then its ConversationRelay leg (the action's TwiML)."""
    rec = await rig.place_call(FAILOVER, script)
    assert rec.action_twiml is not None and "<ConversationRelay" in rec.action_twiml
    relay_leg = [Listen(), Say("Are you still there?"), Listen(), HangUp()]
    relay = await rig.place_call(FAILOVER, relay_leg, call_sid=rec.call_sid,
                                 twiml=rec.action_twiml, speed=4.0)  # fmt: skip
    return rec, relay


async def test_refused_realtime_session_fails_over_to_relay(start_rig: StartRig) -> None:
    """Inworld Realtime refusing (503): the action hands the call to ConversationRelay, which
    opens with the failover greeting and answers the caller through the Router."""
    rig = await start_rig(realtime=realtime_options(refuse_status=503))
    _rec, relay = await _fail_then_relay(rig, [Say(ms=300), HangUp()])
    assert relay.parameters.get("failover_from") == "realtime-passthrough"
    legs = [c for c in rig.calls.started if c.call_sid == relay.call_sid]
    assert [c.failover_from for c in legs] == [None, "realtime-passthrough"]  # recorded as such
    failovers = rig.services.metrics.exposition().decode()  # type: ignore[union-attr]
    assert 'voiceagent_failovers_total{from_mode="realtime-passthrough"' in failovers
    assert relay.turns[0].clips and relay.turns[1].clips  # failover greeting, then a reply
    messages = rig.router.requests[0].messages
    assert messages[-1]["content"] == "Sorry, I am back."
    last = rig.router.requests[-1].messages
    assert last[-1] == {"role": "user", "content": "Are you still there?"}


async def test_dropped_realtime_session_fails_over_with_the_conversation(
    start_rig: StartRig,
) -> None:
    """Inworld dropping mid-call and refusing every new session: once the reconnect attempts
    are spent, the relay leg carries the conversation heard so far."""
    options = realtime_options(drop_after_responses=2, refuse_after_sessions=1)
    rig = await start_rig(realtime=options)
    script = [Listen(), Say(ms=600), Listen(), Say(ms=600), Listen(), HangUp()]
    rec, _relay = await _fail_then_relay(rig, script)
    assert rec.heard_ms > 0 and rig.services.calls.count() == 0
    last = rig.router.requests[-1].messages
    roles = [m["role"] for m in last]
    assert roles.count("assistant") >= 2, last  # realtime greeting + reply, failover greeting
    assert last[-1] == {"role": "user", "content": "Are you still there?"}
