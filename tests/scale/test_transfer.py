"""A transfer the agent makes (the `transfer_call` tool) is carried out by whichever instance
gets the `<Connect action>` callback."""

from __future__ import annotations

import pytest

from tests.rig import realtime_options
from tests.scale.harness import Scale
from tests.scale.topology import FRONT_DESK, TRANSFER_REALTIME, TRANSFER_RELAY
from voiceagent.sim.fake_tool_calls import ScriptedToolCall
from voiceagent.sim.script import HangUp, Listen, Pause, Say

pytestmark = pytest.mark.scale

TO_FRONT_DESK = ScriptedToolCall("person", "transfer_call", {"destination": "front_desk"})
DIAL = f"<Dial>{FRONT_DESK}</Dial>"


async def test_realtime_transfer_is_dialled_by_the_other_instance(scale: Scale) -> None:
    """The realtime stream's instance records the transfer; the callback, on the other
    instance, dials the destination's number from the call's plan."""
    scale.realtime.options = realtime_options(
        transcripts=("A person please",), tool_calls=(TO_FRONT_DESK,),
        tool_answer="Connecting you now.", response_audio_ms=None,
    )  # fmt: skip
    await scale.steer("app1")  # webhook app1, stream app2, callback app1
    rec = await scale.place_call(TRANSFER_REALTIME, [Listen(), Say(ms=700), Listen(),
                                                     Pause(4000), HangUp()])  # fmt: skip
    assert rec.closed_by == "server" and DIAL in (rec.action_twiml or ""), rec.summary()
    where = scale.topology.where(rec.call_sid)
    assert where["stream"] == {"app2"} and where["action"] == {"app1"}, where


async def test_relay_transfer_is_dialled_by_any_instance(scale: Scale) -> None:
    """A relay transfer ends the session with the destination's name; the callback on any
    instance dials its number from the call's plan."""
    scale.router.tool_calls, scale.router.tool_answer = (TO_FRONT_DESK,), "Connecting you now."
    waiting = [Pause(250)] * 60  # until the agent ends the session (checked between steps)
    script = [Listen(), Say("A person please."), Listen(), *waiting]
    rec = await scale.place_call(TRANSFER_RELAY, script)
    assert DIAL in (rec.action_twiml or ""), rec.summary()
    assert scale.topology.where(rec.call_sid)["action"], "the callback was logged"
