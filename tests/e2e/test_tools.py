"""Tools in whole calls, both modes, through the real wire protocols: the app, the fake Inworld
Realtime and Router scripted to call tools, the simulated Twilio, and an HTTP tool server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from tests.rig import Rig, StartRig, make_router, rig_config
from tests.rig import realtime_options as options
from voiceagent.session.call import CallSession, EndReason
from voiceagent.sim.fake_tool_calls import FollowUp, ScriptedToolCall
from voiceagent.sim.script import HangUp, Listen, Pause, PressKey, Say, Step
from voiceagent.sim.tool_server import ToolServer

REALTIME = "+18005550121"
RELAY = "+18005550122"
BOTH = pytest.mark.parametrize("number", [REALTIME, RELAY], ids=["realtime", "relay"])
FRONT_DESK = "+18005550199"
SCRIPTS = (
    ScriptedToolCall("weather", "get_weather", {"city": "Paris"}),
    ScriptedToolCall("bye", "end_call", {}, say="Goodbye!"),
    ScriptedToolCall("a person", "transfer_call", {"destination": "front_desk"}),
    ScriptedToolCall("the boss", "transfer_call", {"destination": "ceo"}),
)
WEATHER = "What is the weather in Paris?"
HOURS = "What are your opening hours?"


@pytest.fixture
async def tool_server() -> AsyncIterator[ToolServer]:
    async with ToolServer(slow_s=10.0) as server:
        yield server


def _tools(server: ToolServer, path: str, timeout_s: float) -> list[dict[str, Any]]:
    weather = {"name": "get_weather", "description": "The weather in a city.", "method": "GET",
               "url": server.url_for(path), "timeout_s": timeout_s,
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                              "required": ["city"]}}  # fmt: skip
    destination = {"number": FRONT_DESK, "announcement": "Connecting you now."}
    transfer = {"name": "transfer_call", "destinations": {"front_desk": destination}}
    return [{"name": "end_call"}, transfer, weather]


async def _start(
    start_rig: StartRig, server: ToolServer, said: tuple[str, ...], *, path: str = "/weather",
    timeout_s: float = 2.0, answer: str = "Okay.", follow_up: FollowUp = "auto",
    voice_source: str = "inworld",
) -> Rig:  # fmt: skip
    """A rig whose two tool numbers have end_call, transfer_call and get_weather at `path`;
    the fakes call tools on the SCRIPTS phrases (realtime hears `said`, in order)."""
    tools = _tools(server, path, timeout_s)
    config = rig_config(**{
        REALTIME: {"mode": "realtime-passthrough", "record_transcripts": True,
                   "agent": {"greeting": "Hi.", "tools": tools}},
        RELAY: {"mode": "relay-router", "record_transcripts": True,
                "relay": {"voice_source": voice_source},
                "agent": {"greeting": "Hi.", "tools": tools}},
    })  # fmt: skip
    realtime = options(transcripts=said, tool_calls=SCRIPTS, tool_answer=answer,
                       follow_up=follow_up)  # fmt: skip
    router = make_router(tool_calls=SCRIPTS, tool_answer=answer)
    return await start_rig(config=config, realtime=realtime, router=router)


def _caller(*said: str, end: list[Step] | None = None) -> list[Step]:
    """Listen to the greeting, then say each line and listen to the answer."""
    steps: list[Step] = [Listen()]
    for i, text in enumerate(said):
        steps += [Say(text, ms=700, seed=i + 1), Listen()]
    return [*steps, *(end if end is not None else [HangUp()])]


def _outputs(rig: Rig, number: str, call_sid: str) -> list[str]:
    """The tool results the model received: function_call_output items (realtime), or the
    `tool` messages of the Router requests (relay), each once."""
    if number == REALTIME:
        return [str(i["output"]) for i in rig.realtime.session(call_sid).function_outputs()]
    seen: dict[str, str] = {}
    for request in rig.router.requests:
        for message in request.messages:
            if message.get("role") == "tool":
                seen.setdefault(str(message["tool_call_id"]), str(message["content"]))
    return list(seen.values())


def _roles(call: CallSession) -> list[str]:
    """The history the model sees next, as roles (`assistant+tools`: a call was made)."""
    return [
        f"{m['role']}+tools" if m.get("tool_calls") else str(m["role"])
        for m in call.history.messages()
    ]


@BOTH
async def test_http_tool_answer_is_spoken(
    start_rig: StartRig, tool_server: ToolServer, number: str
) -> None:
    """The model's call reaches the HTTP tool with its arguments, the JSON answer goes back to
    the model, the follow-up reply using it is heard; history, log and turn record the call."""
    rig = await _start(start_rig, tool_server, (WEATHER,), answer="Found: {output}")
    with capture_logs() as logs:
        rec = await rig.place_call(number, _caller(WEATHER))
        call = await rig.ended(rec.call_sid)
    [request] = tool_server.requests
    assert (request.method, request.path, request.query) == ("GET", "/weather", {"city": "Paris"})
    [output] = _outputs(rig, number, rec.call_sid)
    assert orjson.loads(output)["forecast"] == "light rain"
    assert _roles(call)[-4:] == ["user", "assistant+tools", "tool", "assistant"]
    assert "light rain" in call.history.messages()[-1]["content"]
    [logged] = [e for e in logs if e["event"] == "tool_called"]
    assert logged["tool"] == "get_weather" and logged["outcome"] == "ok"
    turn = rig.calls.turns_of(rec.call_sid)[-1]
    assert turn.tool_calls == 1 and turn.tool_ms is not None
    assert call.summary()["tool_calls"] == 1 and call.ended_by == "caller"
    assert call.summary()["tool_errors"] == 0
    assert rec.heard_ms > 0 and len(rec.turn_latencies_ms()) == 1


@BOTH
@pytest.mark.parametrize(("path", "outcome"), [("/slow", "timeout"), ("/fail", "http_error")])
async def test_failing_http_tool_is_told_to_the_model_and_the_call_goes_on(
    start_rig: StartRig, tool_server: ToolServer, number: str, path: str, outcome: str
) -> None:
    """A tool that times out or fails gives the model a short error it can recover from; it
    answers, and the next question is answered as usual; the call counts a tool error."""
    rig = await _start(start_rig, tool_server, (WEATHER, HOURS), path=path, timeout_s=0.3)
    rec = await rig.place_call(number, _caller(WEATHER, HOURS))
    call = await rig.ended(rec.call_sid)
    [output] = _outputs(rig, number, rec.call_sid)
    assert orjson.loads(output)["error"] == outcome
    assert _roles(call)[-6:] == ["user", "assistant+tools", "tool", "assistant", "user",
                                 "assistant"]  # fmt: skip
    assert call.end_reason is EndReason.CALLER_HANGUP and len(rec.turn_latencies_ms()) == 2
    assert (call.counters.tool_calls, call.counters.tool_errors) == (1, 1)  # the report's rate


@BOTH
async def test_end_call_ends_the_call_after_the_goodbye_was_heard(
    start_rig: StartRig, tool_server: ToolServer, number: str
) -> None:
    """`end_call`: the agent's last words play to their end, then we end the call; the
    caller never hangs up, the action hangs up, and `call_ended` says the agent ended it."""
    rig = await _start(start_rig, tool_server, ("Thanks, bye.",), answer="Take care.")
    rec = await rig.place_call(number, _caller("Thanks, bye.", end=[Pause(3000), HangUp()]))
    call = await rig.ended(rec.call_sid)
    assert rec.closed_by == "server"
    assert call.end_reason is EndReason.AGENT_ENDED and call.ended_by == "end_call"
    assert call.summary()["ended_by"] == "end_call" and call.transfer is None
    assert _roles(call)[-4:] == ["user", "assistant+tools", "tool", "assistant"]
    if number == REALTIME:
        session = rig.realtime.session(rec.call_sid)
        last = session.responses[-1]
        assert last.text == "Take care." and last.status == "completed"
        assert rec.heard_ms_by_response[last.id] == last.audio_ms_sent  # heard to its end
        assert "<Dial" not in (rec.action_twiml or "")
    else:
        end = next(m for m in rec.messages if m["type"] == "end")
        last_clip = rec.turns[-1].clips[-1]
        assert last_clip.fetch_done is not None
        assert end["_at"] >= last_clip.fetch_done + last_clip.duration_ms / 1000
        assert "handoffData" not in end and rec.session_status == "ended"
        assert "<Hangup />" in (rec.action_twiml or "")


@BOTH
async def test_transfer_to_an_allowed_destination_dials_its_configured_number(
    start_rig: StartRig, tool_server: ToolServer, number: str
) -> None:
    """`transfer_call` to a listed destination: the announcement is spoken, the call ends
    from our side, and the `<Connect action>` answer `<Dial>`s the number from the YAML."""
    said = "Can I talk to a person?"
    rig = await _start(start_rig, tool_server, (said,), answer="Connecting you now.")
    rec = await rig.place_call(number, _caller(said, end=[Pause(3000), HangUp()]))
    call = await rig.ended(rec.call_sid)
    assert call.end_reason is EndReason.AGENT_ENDED and call.transfer == "front_desk"
    assert call.summary()["ended_by"] == "transfer"
    assert f"<Dial>{FRONT_DESK}</Dial>" in (rec.action_twiml or "")
    assert call.history.messages()[-1]["content"].strip() == "Connecting you now."
    if number == RELAY:
        handoff = orjson.loads(rec.handoff_data or "{}")
        assert handoff == {"reasonCode": "transfer", "destination": "front_desk"}


@BOTH
async def test_transfer_to_an_unlisted_destination_is_refused_to_the_model(
    start_rig: StartRig, tool_server: ToolServer, number: str
) -> None:
    """A destination the number does not list is an invalid-arguments error for the model:
    nothing is dialled and the call goes on until the caller hangs up."""
    said = "Put me through to the boss."
    rig = await _start(start_rig, tool_server, (said,))
    rec = await rig.place_call(number, _caller(said))
    call = await rig.ended(rec.call_sid)
    [output] = _outputs(rig, number, rec.call_sid)
    assert orjson.loads(output)["error"] == "invalid_arguments" and "ceo" in output
    assert call.end_reason is EndReason.CALLER_HANGUP and call.transfer is None
    assert "<Dial" not in (rec.action_twiml or "")


@BOTH
async def test_barge_in_during_a_tool_call_cancels_it_and_answers_the_caller(
    start_rig: StartRig, tool_server: ToolServer, number: str
) -> None:
    """The caller speaks while a slow tool runs: the run is cancelled, the model gets a
    `cancelled` result at once (never left waiting), and the new question is answered."""
    rig = await _start(start_rig, tool_server, (WEATHER, HOURS), path="/slow", timeout_s=8.0)
    script = [Listen(), Say(WEATHER, ms=700, seed=1), Pause(800), Say(HOURS, ms=700, seed=2),
              Listen(), HangUp()]  # fmt: skip
    with capture_logs() as logs:
        rec = await rig.place_call(number, script)
        call = await rig.ended(rec.call_sid)
    [output] = _outputs(rig, number, rec.call_sid)
    assert orjson.loads(output)["error"] == "cancelled"
    [logged] = [e for e in logs if e["event"] == "tool_called"]
    assert logged["outcome"] == "cancelled" and len(tool_server.requests) == 1
    roles = _roles(call)
    assert roles[roles.index("assistant+tools") :] == ["assistant+tools", "tool", "user",
                                                       "assistant"]  # fmt: skip
    assert call.history.messages()[-2]["content"] == HOURS
    assert call.end_reason is EndReason.CALLER_HANGUP


@pytest.mark.parametrize("follow_up", ["auto", "response_create"])
async def test_realtime_follow_up_is_one_reply_whichever_server_starts_it(
    start_rig: StartRig, tool_server: ToolServer, follow_up: FollowUp
) -> None:
    """Inworld now replies to a function_call_output by itself; an older server waits for
    `response.create`. We send one only when no reply started: one output, one reply."""
    rig = await _start(start_rig, tool_server, (WEATHER,), follow_up=follow_up)
    rec = await rig.place_call(REALTIME, _caller(WEATHER))
    await rig.ended(rec.call_sid)
    session = rig.realtime.session(rec.call_sid)
    after = session.events[session.events.index(session.of_type("conversation.item.create")[-1]) :]
    creates = [e for e in after if e.get("type") == "response.create"]
    assert len(creates) == (1 if follow_up == "response_create" else 0)
    replies = [r for r in session.responses if r.trigger != "vad"][1:]  # after the greeting
    assert len(replies) == 1 and replies[0].status == "completed"
    assert session.ignored_response_creates == 0
    assert rec.heard_ms_by_response[replies[0].id] > 0


async def test_realtime_dtmf_reaches_the_model_as_a_worded_user_message(
    start_rig: StartRig, tool_server: ToolServer
) -> None:
    """A key press on a realtime call becomes a user message worded by the number's template,
    followed by `response.create`; the digit is never logged."""
    rig = await _start(start_rig, tool_server, ())
    with capture_logs() as logs:
        rec = await rig.place_call(REALTIME, [Listen(), PressKey("7"), Listen(), HangUp()])
        call = await rig.ended(rec.call_sid)
    events = rig.realtime.session(rec.call_sid).events
    [at] = [i for i, e in enumerate(events) if e["type"] == "conversation.item.create"
            and e["item"]["content"][0]["text"] == "The caller pressed the key 7."]  # fmt: skip
    assert events[at + 1]["type"] == "response.create"
    assert call.counters.dtmf == 1 and ("user", "The caller pressed the key 7.") in [
        (t.role, t.text) for t in call.history.turns
    ]
    assert [e for e in logs if e["event"] == "dtmf_received"]
    assert all("digit" not in e for e in logs)


def test_simulate_with_tools_shows_each_scenario_in_both_modes() -> None:
    """`voiceagent simulate --tools`: in each mode a caller answered by the HTTP tool, one
    transferred and one whose call the agent ended, each line saying how the call ended."""
    proc = subprocess.run(
        [sys.executable, "-m", "voiceagent", "simulate", "--calls", "0", "--tools", "--seed", "4",
         "--no-outbound"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for protocol in ("media-streams", "conversation-relay"):
        lines = [line for line in out.split("\n\n") if protocol in line]
        notes = " | ".join(lines)
        assert "tool get_weather: tools get_weather; the caller hung up" in notes
        assert "transfer to front_desk: tools transfer_call; transferred to front_desk" in notes
        assert "agent ends: tools end_call; the agent ended the call" in notes
    assert out.count("It's light rain and 14 degrees in Paris.") == 2
    assert "voiceagent report: 7 calls" in out  # the six scenarios and the webhooks call


@BOTH
async def test_tool_calls_and_how_the_call_ended_are_stored(
    start_rig: StartRig, tool_server: ToolServer, number: str
) -> None:
    """The call record says how the call ended (`end_call`) and counts its tool calls; the
    turn that ran the tool stores its tool calls and the time spent in tools."""
    from sqlalchemy import select

    from voiceagent.store.records.schema import calls, make_engine, turns

    async def with_records(**kw: Any) -> Rig:
        return await start_rig(records=True, **kw)

    rig = await _start(with_records, tool_server, ("Thanks, bye.",), answer="Take care.")
    rec = await rig.place_call(number, _caller("Thanks, bye.", end=[Pause(3000), HangUp()]))
    await rig.ended(rec.call_sid)
    await rig.stop()  # flushes the records writer
    engine = make_engine(rig.settings.database_url)
    try:
        async with engine.connect() as conn:
            call = (await conn.execute(select(calls))).one()
            rows = (await conn.execute(select(turns).order_by(turns.c.turn_index))).all()
    finally:
        await engine.dispose()
    assert (call.ended_by, call.transfer, call.tool_calls, call.tool_errors) == (
        "end_call", None, 1, 0)  # fmt: skip
    [tool_turn] = [r for r in rows if r.tool_calls]
    assert tool_turn.tool_calls == 1 and tool_turn.tool_ms is not None and tool_turn.tool_ms >= 0
