"""An Inworld Realtime drop is not the end of a realtime call: a new session carries it on,
and only when none can be opened does the call fail over as before."""

from __future__ import annotations

import orjson

from tests.rig import FAILOVER, REALTIME_A, StartRig, realtime_options
from voiceagent.sim.script import HangUp, Listen, Say

SCRIPT = [Listen(), Say(ms=600), Listen(), Say(ms=600, seed=2), Listen(), HangUp()]


async def test_socket_killed_mid_reply_the_call_goes_on(start_rig: StartRig) -> None:
    """The fake kills the session's socket during the first answer: a new session gets the
    same session.update and the conversation so far, answers the cut turn again, then the
    next turn; the caller's call never ends early and the reconnect is counted."""
    rig = await start_rig(realtime=realtime_options(drop_mid_reply=2, drop_sessions=1))
    record = await rig.place_call(REALTIME_A, SCRIPT)
    first, second = rig.realtime.sessions
    assert first.responses[1].status == "dropped"
    assert second.of_type("session.update")[0] == first.of_type("session.update")[0]
    replayed = [e["item"] for e in second.of_type("conversation.item.create")]
    assert replayed and replayed[-1]["role"] == "user"  # the turn the drop cut, to answer
    assert all(i["content"][0]["type"] in ("input_text", "output_text") for i in replayed)
    assert second.of_type("response.create"), "the cut reply is asked for again"
    assert len(second.responses) >= 2 and all(r.status == "completed" for r in second.responses)
    call = await rig.calls.wait_ended(record.call_sid)
    assert call.counters.upstream_reconnects == 1 and call.upstream_failure is None
    assert call.end_reason is not None and call.end_reason.value == "caller_hangup"
    assert record.closed_by == "caller" and len(record.responses_heard()) >= 3
    assert record.clears, "the cut reply is cleared at the caller"


async def test_replay_carries_what_was_said(start_rig: StartRig) -> None:
    """The new session's replayed items are the conversation as heard: the caller's words
    and the agent's heard greeting and answers, oldest first."""
    options = realtime_options(drop_mid_reply=3, drop_sessions=1,
                               transcripts=("My name is Ada.", "What is my name?"))  # fmt: skip
    rig = await start_rig(realtime=options)
    await rig.place_call(REALTIME_A, SCRIPT)
    second = rig.realtime.sessions[1]
    texts = [(e["item"]["role"], e["item"]["content"][0]["text"])
             for e in second.of_type("conversation.item.create")]  # fmt: skip
    assert texts[:2] == [("assistant", "Hello from A."), ("user", "My name is Ada.")]
    assert texts[2][0] == "assistant"
    assert texts[-1] == ("user", "What is my name?")


async def test_reconnects_exhausted_fail_over_as_before(start_rig: StartRig) -> None:
    """Killed mid-reply and every new session refused: the attempts are spent within the
    configured time, then the call fails over to relay as it did before reconnects."""
    options = realtime_options(drop_mid_reply=2, refuse_after_sessions=1)
    rig = await start_rig(realtime=options)
    record = await rig.place_call(FAILOVER, SCRIPT)
    assert record.action_twiml is not None and "<ConversationRelay" in record.action_twiml
    assert rig.realtime.refused.count(503) == 3  # the default attempts
    call = await rig.calls.wait_ended(record.call_sid)
    assert call.upstream_failure == "dropped" and call.counters.upstream_reconnects == 0
    body = orjson.dumps(rig.realtime.refused).decode()
    assert body.startswith("[503")


async def test_greeting_cut_by_a_drop_is_spoken_again(start_rig: StartRig) -> None:
    """A drop during the greeting: the new session is asked for the greeting again (not a
    reply to nothing), and the call goes on."""
    rig = await start_rig(realtime=realtime_options(drop_mid_reply=1, drop_sessions=1))
    record = await rig.place_call(REALTIME_A, [Listen(), Say(ms=600), Listen(), HangUp()])
    second = rig.realtime.sessions[1]
    [item] = [e["item"] for e in second.of_type("conversation.item.create")][:1]
    assert "Hello from A." in item["content"][0]["text"]  # the greeting instruction
    assert any(r.status == "completed" for r in second.responses)
    assert record.closed_by == "caller" and record.responses_heard()
    call = await rig.calls.wait_ended(record.call_sid)
    assert call.counters.upstream_reconnects == 1 and call.upstream_failure is None
