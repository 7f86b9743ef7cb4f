"""relay `first_clip_ms`: the first clip of a reply ends early, the rest of its sentence
follows, through the real server, the fake Router and the simulated ConversationRelay."""

from __future__ import annotations

import pytest

from tests.rig import RELAY, StartRig, rig_config
from voiceagent.sim.script import Listen, Say


async def test_first_clip_is_cut_near_its_target_and_nothing_is_lost(start_rig: StartRig) -> None:
    """With first_clip_ms 300 the reply "You said: One. Is there ...?" plays as a first clip
    of 300-420 ms, the rest of its first sentence, then the second sentence: the clips add up
    to the whole reply's audio, every clip is a valid WAV, and the history keeps the whole
    reply (the next request carries it)."""
    rig = await start_rig(config=rig_config(relay={"first_clip_ms": 300}))
    record = await rig.place_call(RELAY, [Listen(), Say("One?"), Listen(), Say("Two?"), Listen()])
    reply = record.turns[1]
    durations = [c.duration_ms for c in reply.clips]
    assert all(c.valid for c in reply.clips) and len(durations) == 3
    sentence_ms = len("You said: One. ") * 40.0
    assert 300 <= durations[0] <= 420
    assert durations[0] + durations[1] == pytest.approx(sentence_ms, abs=2)
    assert durations[2] == pytest.approx(len("Is there anything else I can do? ") * 40.0, abs=2)
    last = rig.router.requests[-1].messages
    assert {
        "role": "assistant",
        "content": "You said: One. Is there anything else I can do? ",
    } in last


async def test_without_first_clip_ms_each_sentence_is_one_clip(start_rig: StartRig) -> None:
    """Off by default: one clip per sentence, as before."""
    rig = await start_rig(config=rig_config())
    record = await rig.place_call(RELAY, [Listen(), Say("One?"), Listen()])
    assert len(record.turns[1].clips) == 2
