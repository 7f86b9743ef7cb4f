"""ConversationRelay `applicationReconnect`: a socket Twilio reopens after a drop resumes the
call (same plan, history and arm), answers nothing twice, and is recorded."""

from __future__ import annotations

from typing import Any

from tests.rig import RELAY, Rig, StartRig, make_router, rig_config
from voiceagent.sim.script import Drop, HangUp, Listen, Say, SendRaw


def _user_messages(request: Any) -> list[str]:
    return [m["content"] for m in request.messages if m["role"] == "user"]


async def test_twiml_asks_for_application_reconnect_by_default(rig: Rig) -> None:
    """The relay TwiML carries applicationReconnect="true" unless the number turns it off."""
    record = await rig.place_call(RELAY, [Listen(), HangUp()])
    assert record.relay_attributes["applicationReconnect"] == "true"


async def test_drop_between_turns_reconnects_without_a_callback(start_rig: StartRig) -> None:
    """A dropped socket is reopened by Twilio: the new leg keeps the history, the input Twilio
    replays is not answered again, no action callback runs until the call ends, and the
    call's record counts one reconnect."""
    rig = await start_rig(config=rig_config())
    script = [Listen(), Say("Remember banana."), Listen(), Drop(), Say("What was it?"), Listen()]
    record = await rig.place_call(RELAY, [*script, HangUp()])
    assert record.sessions == 2 and record.reconnects == 1 and record.replayed == 1
    assert record.session_status == "completed" and record.parameters.get("attempt") is None
    requests = rig.router.requests
    assert len(requests) == 3, [_user_messages(r) for r in requests]  # greeting, 2 turns
    assert _user_messages(requests[2])[-2:] == ["Remember banana.", "What was it?"]
    assert requests[2].messages[-2]["content"].startswith("You said: Remember banana.")
    call = await rig.calls.wait_ended(record.call_sid)
    assert call.counters.reconnects == 1
    assert all(rec.counters.reconnects <= 1 for rec in rig.calls.started)


async def test_reply_cut_by_the_drop_is_answered_once_on_the_new_leg(start_rig: StartRig) -> None:
    """A reply in flight when the socket drops is answered again, once, on the reconnected
    leg (its first part is not kept as if heard twice), and the next turn follows it."""
    rig = await start_rig(config=rig_config(), router=make_router(sentence_s=0.6))
    script = [
        Listen(), Say("Tell me a long story please."), Listen("playing", 100), Drop(),
        Listen(), Say("Thanks."), Listen(), HangUp(),
    ]  # fmt: skip
    record = await rig.place_call(RELAY, script)
    assert record.sessions == 2 and record.reconnects == 1
    users = [_user_messages(r)[-1:] for r in rig.router.requests[1:]]
    assert users == [["Tell me a long story please."]] * 2 + [["Thanks."]], users
    last = rig.router.requests[-1].messages
    assert _user_messages(rig.router.requests[-1]) == ["Tell me a long story please.", "Thanks."]
    assert [m["role"] for m in last[-3:]] == ["user", "assistant", "user"]
    assert record.turns[1].clips and record.turns[2].clips


async def test_replay_of_only_the_outage_also_works(start_rig: StartRig) -> None:
    """If Twilio replays only what was said while the socket was down (the other reading of
    the docs), the call carries on the same way."""
    rig = await start_rig(config=rig_config())
    script = [Listen(), Say("One."), Listen(), Drop(), Say("Two."), Listen(), HangUp()]
    record = await rig.place_call(RELAY, script, replay_last=False)
    assert record.reconnects == 1 and record.replayed == 0
    assert [_user_messages(r)[-1:] for r in rig.router.requests[1:]] == [["One."], ["Two."]]


async def test_same_words_twice_are_two_turns(start_rig: StartRig) -> None:
    """A caller who says the same thing twice gets two answers: only replays are skipped."""
    rig = await start_rig(config=rig_config())
    script = [Listen(), Say("Yes."), Listen(), Say("Yes."), Listen(), Drop(), Listen(), HangUp()]
    record = await rig.place_call(RELAY, script)
    assert record.reconnects == 1 and record.replayed == 1
    assert len(rig.router.requests) == 3  # greeting and two answers; the replay is skipped


async def test_without_application_reconnect_a_drop_takes_the_action_path(
    start_rig: StartRig,
) -> None:
    """With `application_reconnect: false` the TwiML does not ask for it and a drop goes
    through the `<Connect action>` callback (one reconnect leg, attempt=2), as before."""
    rig = await start_rig(config=rig_config(relay={"application_reconnect": False}))
    script = [Listen(), Say("Hi."), Listen(), Drop(), Say("Again."), Listen(), HangUp()]
    record = await rig.place_call(RELAY, script)
    assert "applicationReconnect" in record.relay_attributes
    assert record.relay_attributes["applicationReconnect"] == "false"
    assert record.reconnects == 0 and record.parameters["attempt"] == "2"


async def test_config_updated_naming_a_provider_is_recorded(start_rig: StartRig) -> None:
    """A `configUpdated` naming a new provider (Twilio's failover) is counted and kept with
    the call; the call goes on."""
    rig = await start_rig(config=rig_config())
    update = '{"type": "configUpdated", "ttsProvider": "Amazon", "reason": "failover"}'
    record = await rig.place_call(RELAY, [Listen(), SendRaw(update), Say("Hi."), Listen(),
                                          HangUp()])  # fmt: skip
    call = await rig.calls.wait_ended(record.call_sid)
    assert call.counters.provider_switches == 1 and call.providers == ["Amazon"]
    assert record.turns[1].clips and record.errors_sent == []
