"""The call-context webhook through the real wire: simulated Twilio, fake Inworld, a real
local receiver; the context applied in both modes, and the YAML used when it fails."""

from __future__ import annotations

from typing import Any

from tests.rig import StartRig
from tests.webhooks.conftest import CTX_REALTIME, CTX_RELAY, HOOK_SETTINGS, hooks_config
from voiceagent.sim.hooks_receiver import HooksReceiver
from voiceagent.sim.script import HangUp, Listen


def _sent_text(rig: Any) -> str:
    """Every client event the fake Inworld Realtime received, as one string."""
    return " ".join(str(e) for s in rig.realtime.sessions for e in s.events)


def _context_count(rig: Any, outcome: str) -> float | None:
    metrics = rig.services.metrics
    assert metrics is not None
    name = "voiceagent_call_context_total"
    return metrics.registry.get_sample_value(name, {"outcome": outcome})


async def test_realtime_call_uses_context(start_rig: StartRig, hooks: HooksReceiver) -> None:
    """A realtime call greets with the context's greeting and fills the instructions'
    placeholders."""
    rig = await start_rig(config=hooks_config(hooks, events=False), **HOOK_SETTINGS)
    record = await rig.place_call(CTX_REALTIME, [Listen(), HangUp()])
    assert record.heard_ms > 0
    sent = _sent_text(rig)
    assert "Hello Ada! Calling about order A-1042?" in sent
    assert "You help Ada with order A-1042." in sent
    request = hooks.contexts[0]
    assert request["type"] == "call.context" and request["direction"] == "inbound"
    assert request["number"] == CTX_REALTIME and request["mode"] == "realtime-passthrough"
    assert hooks.context_verified == [True]


async def test_relay_call_uses_context(start_rig: StartRig, hooks: HooksReceiver) -> None:
    """A relay call greets with the YAML greeting's placeholders filled from the context."""
    hooks.context_answer = {"variables": {"first_name": "Grace", "open_order": "B-7"}}
    rig = await start_rig(config=hooks_config(hooks, events=False), **HOOK_SETTINGS)
    await rig.place_call(CTX_RELAY, [Listen(), HangUp()])
    raw = b" ".join(r.raw for r in rig.router.requests).decode()
    assert "Hi there, Grace." in raw
    assert len(hooks.contexts) == 1


async def test_context_timeout_falls_back(start_rig: StartRig, hooks: HooksReceiver) -> None:
    """A context answer slower than timeout_ms leaves the YAML settings (placeholders empty)
    and is counted as a timeout."""
    hooks.context_delay_s = 1.0
    rig = await start_rig(config=hooks_config(hooks, timeout_ms=200, events=False), **HOOK_SETTINGS)
    record = await rig.place_call(CTX_REALTIME, [Listen(), HangUp()])
    assert record.heard_ms > 0
    sent = _sent_text(rig)
    assert "Hi there, ." in sent and "Ada" not in sent
    assert _context_count(rig, "timeout") == 1


async def test_context_garbage_falls_back(start_rig: StartRig, hooks: HooksReceiver) -> None:
    """An answer that is not JSON, or fails validation, leaves the YAML settings."""
    rig = await start_rig(config=hooks_config(hooks, events=False), **HOOK_SETTINGS)
    for answer in (b"<html>oops</html>", b'{"agent": {"temperature": 9}}', b'{"colour": 1}'):
        hooks.context_answer = answer
        await rig.place_call(CTX_RELAY, [Listen(), HangUp()])
    raw = b" ".join(r.raw for r in rig.router.requests).decode()
    assert raw.count("Hi there, .") == 3 and "Ada" not in raw
    assert _context_count(rig, "invalid") == 3


async def test_context_reject_says_message(start_rig: StartRig, hooks: HooksReceiver) -> None:
    """`reject` makes a relay call say the message and hang up, and a realtime call's stream
    end before Inworld is asked, its action callback saying the message."""
    hooks.context_answer = {"reject": {"message": "We are closed today."}}
    rig = await start_rig(config=hooks_config(hooks, events=False), **HOOK_SETTINGS)
    relay = await rig.place_call(CTX_RELAY, [Listen(), HangUp()])
    assert "We are closed today." in relay.twiml and "<Hangup" in relay.twiml
    realtime = await rig.place_call(CTX_REALTIME, [Listen(), HangUp()])
    assert rig.realtime.sessions == []
    assert realtime.action_twiml is not None and "We are closed today." in realtime.action_twiml


async def test_context_sets_the_calls_turn_taking(
    start_rig: StartRig, hooks: HooksReceiver
) -> None:
    """`turn_taking` in the answer: a realtime call's `session.update` carries its eagerness, a
    relay call's TwiML its ConversationRelay settings (the YAML's are replaced, others kept)."""
    hooks.context_answer = {
        "turn_taking": {"eagerness": "low", "interruptible": "dtmf", "speech_timeout_ms": 2500}
    }
    rig = await start_rig(config=hooks_config(hooks, events=False), **HOOK_SETTINGS)
    await rig.place_call(CTX_REALTIME, [Listen(), HangUp()])
    update = rig.realtime.sessions[0].of_type("session.update")[0]["session"]
    assert update["audio"]["input"]["turn_detection"]["eagerness"] == "low"
    relay = await rig.place_call(CTX_RELAY, [Listen(), HangUp()])
    attributes = relay.relay_attributes
    assert attributes["interruptible"] == "dtmf" and attributes["speechTimeout"] == "2500"
    assert attributes["interruptSensitivity"] == "high"  # not in the answer: the YAML's
    assert _context_count(rig, "applied") == 2


async def test_context_turn_taking_out_of_bounds_falls_back(
    start_rig: StartRig, hooks: HooksReceiver
) -> None:
    """A `turn_taking` that fails validation (empty, or a value out of range) leaves the YAML."""
    rig = await start_rig(config=hooks_config(hooks, events=False), **HOOK_SETTINGS)
    for bad in ({}, {"speech_timeout_ms": 5}, {"eagerness": "frantic"}):
        hooks.context_answer = {"turn_taking": bad}
        relay = await rig.place_call(CTX_RELAY, [Listen(), HangUp()])
        assert "speechTimeout" not in relay.relay_attributes
    assert _context_count(rig, "invalid") == 3
