"""An outbound call through the call webhooks: its context is asked with `direction:
outbound`, its variables and the context's fill the greeting, and its `call.ended` says
outbound (real receiver, fake Twilio playing the callee)."""

from __future__ import annotations

from tests.rig import StartRig, rig_config, running_outbound
from tests.webhooks.conftest import HOOK_SETTINGS
from voiceagent.sim.callee import Callee
from voiceagent.sim.hooks_receiver import HooksReceiver
from voiceagent.webhooks.events import event_id

OUT, PERSON = "+18005550151", "+14155550181"


async def test_outbound_call_events_say_outbound(start_rig: StartRig, hooks: HooksReceiver) -> None:
    """The instructions get the dial's variable and the context's; `call.ended` carries
    direction outbound, our number as `from` and both sets of variables."""
    webhooks = {
        "call_context": {"url": hooks.context_url},
        "call_events": {"url": hooks.events_url},
    }
    agent = {"instructions": "Remind {{name}}, known as {{first_name}}."}
    config = rig_config(**{OUT: {"mode": "realtime-passthrough", "webhooks": webhooks,
                                 "agent": agent, "outbound": {"amd": True}}})  # fmt: skip
    async with running_outbound(start_rig, {PERSON: Callee("person")}, config=config,
                                records=True, **HOOK_SETTINGS) as out:  # fmt: skip
        status, body = await out.dial(OUT, PERSON, name="Ann")
        assert status == 201
        sid = body["call_sid"]
        await out.callees.wait(sid)
        sent = " ".join(str(e) for s in out.rig.realtime.sessions if sid in s.key
                        for e in s.events)  # fmt: skip
        assert "Remind Ann, known as Ada." in sent
        events = await hooks.wait_events(1)
    ended = events[event_id(sid, "call.ended")]
    assert ended["direction"] == "outbound" and ended["from"] == OUT and ended["to"] == PERSON
    assert ended["variables"]["name"] == "Ann" and ended["variables"]["first_name"] == "Ada"


MACHINE = "+14155550182"


async def test_voicemail_fills_the_contexts_variables(
    start_rig: StartRig, hooks: HooksReceiver
) -> None:
    """A machine answers a number with a context webhook: the voicemail message says the
    dial's variable and the context's (it is filled once the context answered)."""
    message = "Hi {{name}} ({{first_name}}), order {{open_order}} is ready."
    outbound = {"amd": True, "voicemail": {"action": "leave_message", "message": message}}
    hooks_ = {"call_context": {"url": hooks.context_url}}
    config = rig_config(**{OUT: {"mode": "realtime-passthrough", "outbound": outbound,
                                 "webhooks": hooks_}})  # fmt: skip
    async with running_outbound(start_rig, {MACHINE: Callee("machine")}, config=config,
                                **HOOK_SETTINGS) as out:  # fmt: skip
        status, body = await out.dial(OUT, MACHINE, name="Ann")
        assert status == 201
        sid = body["call_sid"]
        record = await out.callees.wait(sid)
        assert record.amd_posted == "machine_end_beep"
        said = [r.text for s in out.rig.realtime.sessions if sid in s.key for r in s.responses]
    assert said == ["Hi Ann (Ada), order A-1042 is ready."]
