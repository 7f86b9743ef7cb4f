"""The realtime call's tool rules as a state machine (RealtimeCall with RealtimeTools): function
calls in, RunTool / outputs / follow-ups / the agent's end of the call out. No loop."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from voiceagent.protocols import inworld_realtime as rt
from voiceagent.protocols import twilio_media as tm
from voiceagent.session.call import CallSession, EndReason
from voiceagent.session.commands import (
    CallCommand,
    CancelTool,
    RunTool,
    SendPhone,
    SendUpstream,
    StopCall,
    Wake,
)
from voiceagent.session.realtime_call import RealtimeCall
from voiceagent.session.realtime_tools import (
    FOLLOW_UP_GRACE_S,
    GOODBYE_LIMIT_S,
    MAX_CALLS_PER_TURN,
)
from voiceagent.tools.calls import EndCall, ToolCall, ToolOutcome, ToolResult, Transfer

SID = "MZ" + "b" * 32
WEATHER = ToolCall("call_1", "get_weather", '{"city":"Paris"}')


def _machine(tools: bool = True) -> RealtimeCall:
    call = CallSession(call_sid="CA1", number="+18005550101", mode="realtime-passthrough",
                       stream_sid=SID, record_transcripts=True)  # fmt: skip
    return RealtimeCall(call, append_ms=40, mark_ms=100, tools=tools,
                        dtmf_template="Key {digit} pressed.")  # fmt: skip


def _upstream(commands: list[CallCommand]) -> list[dict[str, Any]]:
    return [orjson.loads(c.frame) for c in commands if isinstance(c, SendUpstream)]


def _call_made(m: RealtimeCall, rid: str = "r1", call: ToolCall = WEATHER) -> list[CallCommand]:
    """A response `rid` that calls `call`: created, its item, arguments done, response done."""
    m.receive_upstream(rt.SpeechStopped(), 1.0)
    m.receive_upstream(rt.ResponseCreated(response=rt.ResponseInfo(id=rid)), 1.0)
    item = rt.Item(id="item_f", type="function_call", call_id=call.call_id, name=call.name)
    m.receive_upstream(rt.ResponseOutputItemAdded(response_id=rid, item=item), 1.0)
    done = rt.FunctionCallArgumentsDone(
        response_id=rid, item_id="item_f", call_id=call.call_id, arguments=call.arguments
    )  # `name` left out, as Inworld may
    commands = m.receive_upstream(done, 1.1)
    m.receive_upstream(rt.ResponseDone(response=rt.ResponseInfo(id=rid)), 1.2)
    return commands


def _ok(call: ToolCall, output: str = '{"forecast":"rain"}', **kw: Any) -> ToolResult:
    return ToolResult(call, ToolOutcome.OK, output, duration_ms=250.0, **kw)


def test_a_completed_function_call_is_run_and_kept_in_the_history() -> None:
    """Arguments done (name taken from the item) → one RunTool; the call sits on the assistant
    turn of its response."""
    m = _machine()
    assert _call_made(m) == [RunTool(WEATHER)]
    turn = next(t for t in m.call.history.turns if t.response_id == "r1")
    assert turn.tool_calls == (WEATHER,)


def test_the_result_goes_back_as_an_output_and_a_follow_up_check_is_timed() -> None:
    """A result becomes a function_call_output at once, is recorded (history, turn, counter)
    and asks to be woken after the grace period to see whether a follow-up started."""
    m = _machine()
    _call_made(m)
    commands = m.tool_finished(_ok(WEATHER), 1.5)
    [output] = _upstream(commands)
    assert output["item"] == {"type": "function_call_output", "call_id": "call_1",
                              "output": '{"forecast":"rain"}'}  # fmt: skip
    assert Wake(FOLLOW_UP_GRACE_S) in commands
    assert m.call.history.messages()[-1] == {"role": "tool", "tool_call_id": "call_1",
                                             "content": '{"forecast":"rain"}'}  # fmt: skip
    turn = m.call.latency.current
    assert turn is not None and turn.tool_calls == 1 and turn.tool_ms == 250.0
    assert m.call.counters.tool_calls == 1


def test_response_create_is_sent_only_when_no_follow_up_started() -> None:
    """After the grace: `response.create` if the server did not reply by itself (an older
    server); nothing if it did (Inworld now) — never two replies for one output."""
    older = _machine()
    _call_made(older)
    older.tool_finished(_ok(WEATHER), 1.5)
    assert older.wake(1.4) == []  # not due yet
    assert _upstream(older.wake(1.5 + FOLLOW_UP_GRACE_S)) == [{"type": "response.create"}]
    assert older.wake(3.0) == []  # once
    current = _machine()
    _call_made(current)
    current.tool_finished(_ok(WEATHER), 1.5)
    current.receive_upstream(rt.ResponseCreated(response=rt.ResponseInfo(id="r2")), 1.6)
    assert current.wake(1.5 + FOLLOW_UP_GRACE_S) == []


def test_caller_speech_during_a_tool_call_cancels_it_with_a_cancelled_output() -> None:
    """speech_started while a tool runs: CancelTool and a `cancelled` output at once (the
    model never waits), no follow-up asked for; the late real result is ignored."""
    m = _machine()
    _call_made(m)
    commands = m.receive_upstream(rt.SpeechStarted(), 2.0)
    [cancel] = [c for c in commands if isinstance(c, CancelTool)]
    assert cancel.result.outcome is ToolOutcome.CANCELLED and cancel.result.call == WEATHER
    [output] = _upstream(commands)
    assert orjson.loads(output["item"]["output"])["error"] == "cancelled"
    assert not any(isinstance(c, Wake) for c in commands)
    assert m.tool_finished(_ok(WEATHER), 2.5) == []
    assert [m["role"] for m in m.call.history.messages()][-2:] == ["assistant", "tool"]


def test_an_automatic_follow_up_over_the_callers_speech_is_cancelled() -> None:
    """Should the server start its follow-up to the cancelled output while the caller still
    talks, that response is cancelled and its audio dropped; after the caller's turn, replies
    flow again."""
    m = _machine()
    _call_made(m)
    m.receive_upstream(rt.SpeechStarted(), 2.0)
    commands = m.receive_upstream(rt.ResponseCreated(response=rt.ResponseInfo(id="r2")), 2.1)
    assert _upstream(commands) == [{"type": "response.cancel", "response_id": "r2"}]
    delta = rt.AudioDelta("r2", "i2", base64.b64encode(b"\x7f" * 800).decode(), 800)
    assert m.receive_audio(delta, 2.2) == ()
    m.receive_upstream(rt.ResponseDone(response=rt.ResponseInfo(id="r2")), 2.3)
    m.receive_upstream(rt.SpeechStopped(), 2.5)
    assert m.receive_upstream(rt.ResponseCreated(response=rt.ResponseInfo(id="r3")), 2.6) == []


def _spoken(m: RealtimeCall, rid: str, now: float) -> str:
    """A response `rid` speaking one 100 ms chunk and finishing; the name of its last mark."""
    m.receive_upstream(rt.ResponseCreated(response=rt.ResponseInfo(id=rid)), now)
    delta = rt.AudioDelta(rid, "i9", base64.b64encode(b"\x7f" * 800).decode(), 800)
    _, mark = m.receive_audio(delta, now)
    m.receive_upstream(rt.ResponseDone(response=rt.ResponseInfo(id=rid)), now)
    return str(orjson.loads(mark)["mark"]["name"])


def test_end_call_closes_once_the_goodbye_was_heard() -> None:
    """end_call: the call waits for the follow-up goodbye to finish and its last mark to be
    echoed (and a quiet grace), then stops as ended by the agent."""
    m = _machine()
    end = ToolCall("call_2", "end_call", "{}")
    _call_made(m, call=end)
    assert Wake(0.1) in m.tool_finished(_ok(end, '{"ok":true}', action=EndCall()), 2.0)
    mark = _spoken(m, "r2", 2.1)  # Inworld's follow-up: "Goodbye!"
    assert m.wake(3.0) == [Wake(0.1)]  # the goodbye is still playing
    m.receive_phone(tm.Mark(stream_sid=SID, mark=tm.MarkInfo(name=mark)), 3.2)
    assert m.wake(3.3) == [StopCall()]
    assert m.call.end_reason is EndReason.AGENT_ENDED and m.call.ended_by == "end_call"


def test_transfer_closes_like_end_call_and_names_the_destination() -> None:
    """transfer_call: the same wait, then `call.transfer` holds the destination NAME."""
    m = _machine()
    transfer = ToolCall("call_3", "transfer_call", '{"destination":"front_desk"}')
    _call_made(m, call=transfer)
    action = Transfer("front_desk", "+18005550199", "One moment.")
    m.tool_finished(_ok(transfer, '{"ok":true}', action=action), 2.0)
    m.receive_upstream(rt.ResponseCreated(response=rt.ResponseInfo(id="r2")), 2.1)
    m.receive_upstream(rt.ResponseDone(response=rt.ResponseInfo(id="r2")), 2.2)  # said nothing
    assert m.wake(2.3) == [Wake(0.1)]  # quiet for less than the grace
    assert m.wake(2.2 + FOLLOW_UP_GRACE_S) == [StopCall()]
    assert m.call.transfer == "front_desk" and m.call.ended_by == "transfer"


def test_a_goodbye_never_heard_ends_the_call_at_the_limit() -> None:
    """Marks that never come back do not keep the call open past GOODBYE_LIMIT_S."""
    m = _machine()
    end = ToolCall("call_2", "end_call", "{}")
    _call_made(m, call=end)
    m.tool_finished(_ok(end, "{}", action=EndCall()), 2.0)
    _spoken(m, "r2", 2.1)
    assert m.wake(2.0 + GOODBYE_LIMIT_S - 0.1) == [Wake(0.1)]
    assert m.wake(2.0 + GOODBYE_LIMIT_S) == [StopCall()]


def test_a_key_press_is_a_worded_user_message_and_waits_for_an_active_response() -> None:
    """DTMF → the template's user message; `response.create` at once when nothing is active,
    else when the active response is done. The digit goes to the model, not to the logs."""
    m = _machine()
    key = tm.Dtmf(stream_sid=SID, dtmf=tm.DtmfInfo(track="inbound_track", digit="5"))
    frames = _upstream(m.receive_phone(key, 1.0))
    assert frames[0]["item"]["content"][0]["text"] == "Key 5 pressed."
    assert frames[1] == {"type": "response.create"}
    m.receive_upstream(rt.ResponseCreated(response=rt.ResponseInfo(id="r1")), 1.1)
    assert [f["type"] for f in _upstream(m.receive_phone(key, 1.2))] == [
        "response.cancel",
        "conversation.item.create",
    ]
    done = m.receive_upstream(rt.ResponseDone(response=rt.ResponseInfo(id="r1")), 1.3)
    assert _upstream(done) == [{"type": "response.create"}]
    assert m.call.counters.dtmf == 2 and m.call.counters.turns == 2


def test_without_tools_function_call_events_are_ignored() -> None:
    """A number without tools runs no tool, whatever the server sends."""
    m = _machine(tools=False)
    assert m.tools is None and _call_made(m) == []
    assert m.wake(5.0) == []


def test_a_function_call_item_is_never_the_truncation_target() -> None:
    """A say-then-call response keeps its message item for truncation, not the call's."""
    m = _machine()
    m.receive_upstream(rt.ResponseCreated(response=rt.ResponseInfo(id="r1")), 1.0)
    call_item = rt.Item(id="item_f", type="function_call", call_id="c", name="get_weather")
    m.receive_upstream(rt.ResponseOutputItemAdded(response_id="r1", item=call_item), 1.0)
    message = rt.Item(id="item_m", type="message")
    m.receive_upstream(rt.ResponseOutputItemAdded(response_id="r1", item=message), 1.0)
    delta = rt.AudioDelta("r1", "item_m", base64.b64encode(b"\x7f" * 1600).decode(), 1600)
    m.receive_audio(delta, 1.0)
    commands = m.receive_upstream(rt.SpeechStarted(), 1.1)
    [truncate] = [f for f in _upstream(commands) if f["type"] == "conversation.item.truncate"]
    assert truncate["item_id"] == "item_m"
    assert isinstance(commands[0], SendPhone)


def test_a_turn_runs_at_most_max_calls_the_rest_are_refused() -> None:
    """A model calling tools in a loop: past MAX_CALLS_PER_TURN in one caller turn, a call is
    answered `refused` at once and not run; the caller's next input starts a fresh count."""
    m = _machine()
    ran = []
    for i in range(MAX_CALLS_PER_TURN + 1):
        call = ToolCall(f"c{i}", "get_weather", "{}")
        commands = _call_made(m, rid=f"r{i}", call=call)
        ran += [c for c in commands if isinstance(c, RunTool)]
        m.tool_finished(_ok(call), 2.0)
    assert len(ran) == MAX_CALLS_PER_TURN
    [cancel] = [c for c in commands if isinstance(c, CancelTool)]
    assert cancel.result.outcome is ToolOutcome.REFUSED
    assert orjson.loads(_upstream(commands)[0]["item"]["output"])["error"] == "refused"
    m.receive_upstream(rt.SpeechStarted(), 3.0)
    assert _call_made(m, rid="r99", call=ToolCall("c99", "get_weather", "{}"))[0] == RunTool(
        ToolCall("c99", "get_weather", "{}")
    )
