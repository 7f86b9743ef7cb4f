"""A newer relay reply never waits behind an older one (ConversationRelay `preemptible`)."""

from __future__ import annotations

from tests.conftest import StartRig
from tests.rig import RELAY, rig_config
from voiceagent.sim.script import HangUp, Listen, Pause, Say

GREETING = " ".join(f"This is sentence number {i} of a rather long greeting." for i in range(8))


async def test_a_newer_reply_preempts_audio_still_queued_from_the_previous_one(
    start_rig: StartRig,
) -> None:
    """Speech that does not interrupt (interruptible none) but is reported starts a new reply;
    its first message preempts the greeting audio still queued, so it is heard at once."""
    entry = {"mode": "relay-router",
             "relay": {"interruptible": "none", "report_input_during_agent_speech": "speech"},
             "agent": {"greeting": GREETING, "instructions": "Be brief."}}  # fmt: skip
    rig = await start_rig(config=rig_config(**{RELAY: entry}))
    script = [Listen(until="playing"), Pause(200), Say("What are your hours?"), Listen(), HangUp()]
    record = await rig.place_call(RELAY, script, speed=4.0)
    greeting, reply = record.turns[0], record.turns[1]
    greeting_ms = sum(clip.duration_ms for clip in greeting.clips)
    assert greeting.preempted and not greeting.interrupted
    assert greeting.heard_ms < greeting_ms - 1000  # most of it was never played
    assert reply.first_heard_at is not None and reply.heard_ms > 0
    assert rig.router.requests[1].messages[-1]["content"] == "What are your hours?"
    assert abs(reply.heard_ms - sum(clip.duration_ms for clip in reply.clips)) < 1  # all of it
