"""`set_turn_taking` in whole calls, both modes: the number lists turn-taking presets, the fakes
call the tool when the caller asks, and the call changes how it takes turns mid-call (relay:
ConversationRelay's `config` message, which the simulated Twilio applies; realtime: a partial
`session.update` of the VAD eagerness, kept by a replacement session after an Inworld drop)."""

from __future__ import annotations

from typing import Any

import orjson

from tests.rig import StartRig, make_router, rig_config
from tests.rig import realtime_options as options
from voiceagent.sim.fake_tool_calls import ScriptedToolCall
from voiceagent.sim.script import HangUp, Listen, Say

REALTIME = "+18005550141"
RELAY = "+18005550142"
SLOWER = "Please give me more time to talk."
PATIENT = (ScriptedToolCall("more time", "set_turn_taking", {"preset": "patient"}),)
PRESETS = [
    {"name": "patient", "description": "the caller pauses a lot", "eagerness": "low",
     "interruptible": "none", "speech_timeout_ms": 2500, "eot_threshold": 0.8},
    {"name": "brisk", "eagerness": "high"},
]  # fmt: skip


async def _rig(start_rig: StartRig, **realtime: Any) -> Any:
    agent = {"greeting": "Hi.", "turn_taking": PRESETS}
    config = rig_config(**{
        REALTIME: {"mode": "realtime-passthrough", "agent": agent},
        RELAY: {"mode": "relay-router", "agent": agent},
    })  # fmt: skip
    base = {"transcripts": (SLOWER, "Thanks.", "One more."), "tool_calls": PATIENT}
    rt = options(**(base | realtime))
    return await start_rig(config=config, realtime=rt, router=make_router(tool_calls=PATIENT))


async def test_relay_set_turn_taking_sends_config(start_rig: StartRig) -> None:
    """Relay: the tool is declared with the presets as an enum; its call sends the preset's
    ConversationRelay settings in one `config` message, which Twilio applies and confirms:
    the caller can no longer interrupt the agent."""
    rig = await _rig(start_rig)
    script = [Listen(), Say(SLOWER), Listen(), Say("Thanks."), Listen(), HangUp()]
    record = await rig.place_call(RELAY, script)
    declared = {t["function"]["name"]: t["function"] for t in rig.router.requests[1].body.tools}
    enum = declared["set_turn_taking"]["parameters"]["properties"]["preset"]["enum"]
    assert enum == ["patient", "brisk"]
    configs = [m for m in record.messages if m.get("type") == "config"]
    assert [{k: v for k, v in m.items() if k != "_at"} for m in configs] == [{
        "type": "config", "interruptible": "none", "speechTimeout": 2500, "eotThreshold": 0.8
    }]  # fmt: skip
    assert record.applied["interruptible"] == "none" and record.errors_sent == []
    call = await rig.calls.wait_ended(record.call_sid)
    assert call.counters.provider_switches == 0  # Twilio's confirmation is not a failover
    assert call.counters.tool_calls == 1 and call.counters.tool_errors == 0


async def test_relay_applied_config_stops_barge_in(start_rig: StartRig) -> None:
    """The simulated Twilio applies the `config`: speech during a reply interrupted it before
    the change (`interruptible: any`, the YAML's) and no longer does after it (`none`)."""
    rig = await _rig(start_rig)
    barge = [Listen("playing", 300), Say("More.")]
    script = [Listen(), Say("Talk."), *barge, Listen(), Say(SLOWER), Listen(),
              Say("Talk again."), *barge, Listen(), HangUp()]  # fmt: skip
    record = await rig.place_call(RELAY, script)
    prompts = [t.prompt for t in record.turns]
    assert prompts[1] == "Talk." and prompts[4] == "Talk again.", prompts
    assert record.turns[1].interrupted and not record.turns[4].interrupted
    assert record.barge_ins == 1 and record.unreported_inputs == []


async def test_realtime_set_turn_taking_survives_an_inworld_drop(start_rig: StartRig) -> None:
    """Realtime: the tool's call sends a partial `session.update` (eagerness low) before its
    output; the fake applies it; a later Inworld drop gets a new session the plan's
    `session.update` and then the same change, before the replayed conversation."""
    rig = await _rig(start_rig, drop_mid_reply=4, drop_sessions=1)
    script = [Listen(), Say(ms=600), Listen(), Say(ms=600, seed=2), Listen(),
              Say(ms=600, seed=3), Listen(), HangUp()]  # fmt: skip
    record = await rig.place_call(REALTIME, script)
    first = rig.realtime.sessions[0]
    updates = first.of_type("session.update")
    assert "set_turn_taking" in {t["name"] for t in updates[0]["session"]["tools"]}
    change = updates[1]["session"]
    assert change["audio"]["input"]["turn_detection"]["eagerness"] == "low"
    assert "tools" not in change and "instructions" not in change
    outputs = [orjson.loads(o["output"]) for o in first.function_outputs()]
    assert outputs[0] == {"ok": True, "turn_taking": "patient"}
    call = await rig.calls.wait_ended(record.call_sid)
    assert call.counters.upstream_reconnects == 1, [r.status for r in first.responses]
    second = rig.realtime.sessions[1]
    again = second.of_type("session.update")
    assert again[0] == updates[0] and again[1] == updates[1]
    order = [e["type"] for e in second.events if e["type"] != "input_audio_buffer.append"]
    assert order[:2] == ["session.update", "session.update"]
    assert second.config["audio"]["input"]["turn_detection"]["eagerness"] == "low"
