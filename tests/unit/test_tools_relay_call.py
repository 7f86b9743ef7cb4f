"""The relay call's tool rules as a state machine (RelayCall with RelayTools): tool rounds,
their follow-up requests, interrupts during a round, the agent's end of the call; and the
pure helpers they use (playout estimate, handoff data). No loop."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from voiceagent.config import parse_config
from voiceagent.protocols import conversation_relay as cr
from voiceagent.session.call import CallSession, EndReason
from voiceagent.session.commands import (
    AbortStream,
    CancelTool,
    RunTool,
    SendPhone,
    StartReply,
    StopCall,
    Wake,
)
from voiceagent.session.relay_call import RelayCall
from voiceagent.session.relay_playout import END_MARGIN_S, Playout
from voiceagent.session.relay_tools import END_GRACE_S, MAX_TOOL_ROUNDS
from voiceagent.tools.calls import EndCall, ToolCall, ToolOutcome, ToolResult, Transfer
from voiceagent.tools.handoff import destination_number, handoff_destination, transfer_handoff

WEATHER = ToolCall("call_1", "get_weather", '{"city":"Paris"}')
END = ToolCall("call_2", "end_call", "{}")


def _machine(tools: bool = True) -> RelayCall:
    call = CallSession(call_sid="CA1", number="+18005550102", mode="relay-router")
    return RelayCall(call, instructions="Be brief.", dtmf_template="Key {digit}.",
                     apology="Sorry.", tools=tools)  # fmt: skip


def _ok(call: ToolCall, output: str = '{"forecast":"rain"}', **kw: Any) -> ToolResult:
    return ToolResult(call, ToolOutcome.OK, output, **kw)


def _asked(m: RelayCall, text: str = "Weather?", now: float = 1.0) -> StartReply:
    commands = m.receive_phone(cr.Prompt(voice_prompt=text, last=True), now)
    start = commands[-1]
    assert isinstance(start, StartReply)
    return start


def _round(m: RelayCall, *calls: ToolCall, now: float = 1.5) -> str:
    """The running reply spoke "One moment." and called `calls`; returns its response id."""
    rid = m.reply or ""
    m.reply_audio(rid, 500.0, "One moment. ", now)
    assert m.reply_spoken(rid, list(calls), now) == [RunTool(c) for c in calls]
    m.reply_finished(rid)
    return rid


def test_a_turn_declares_the_tools_and_the_greeting_does_not() -> None:
    """A caller's turn asks with `tool_choice: auto`; the greeting declares no tools; a
    number without tools never does."""
    m = _machine()
    [greeting] = m.greet("Hi!")
    assert isinstance(greeting, StartReply) and greeting.tool_choice is None
    assert _asked(m).tool_choice == "auto"
    assert _asked(_machine(tools=False)).tool_choice is None


def test_a_round_runs_and_its_results_start_the_follow_up_with_a_consistent_history() -> None:
    """The reply's calls run while the reply stays running; when the last result is in, the
    follow-up request carries the assistant tool_calls (with the words heard) and results."""
    m = _machine()
    _asked(m)
    rid = _round(m, WEATHER, END)
    assert m.running
    assert m.tool_finished(_ok(WEATHER), 2.0) == []  # one result still to come
    [follow_up] = m.tool_finished(_ok(END, "{}"), 2.5)
    assert isinstance(follow_up, StartReply) and follow_up.tool_choice == "auto"
    assert follow_up.response_id != rid
    messages = follow_up.messages
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "tool"]
    assert messages[2]["content"] == "One moment. "
    assert [c["id"] for c in messages[2]["tool_calls"]] == ["call_1", "call_2"]
    timing = m.call.latency.current
    assert timing is not None and timing.tool_calls == 2 and timing.tool_ms == 1000.0
    assert m.call.counters.tool_calls == 2


def test_a_turn_that_keeps_calling_tools_must_answer_after_max_rounds() -> None:
    """Past MAX_TOOL_ROUNDS rounds in one turn, the follow-up says `tool_choice: none`."""
    m = _machine()
    _asked(m)
    choices = []
    for i in range(MAX_TOOL_ROUNDS):
        call = ToolCall(f"c{i}", "get_weather", "{}")
        _round(m, call)
        [follow_up] = m.tool_finished(_ok(call), 2.0 + i)
        assert isinstance(follow_up, StartReply)
        choices.append(follow_up.tool_choice)
    assert choices[-1] == "none" and choices[0] == "auto"
    assert _asked(m, "And tomorrow?").tool_choice == "auto"  # a new turn starts afresh


def test_new_input_during_a_round_cancels_it_and_the_history_stays_consistent() -> None:
    """A prompt while tools run: each call gets its `cancelled` result at once (CancelTool),
    the new request's history pairs every call with a result; the late result is ignored."""
    m = _machine()
    _asked(m)
    _round(m, WEATHER)
    commands = m.receive_phone(cr.Prompt(voice_prompt="Never mind.", last=True), 2.0)
    [cancel] = [c for c in commands if isinstance(c, CancelTool)]
    assert cancel.result.outcome is ToolOutcome.CANCELLED
    assert any(isinstance(c, AbortStream) for c in commands)
    start = commands[-1]
    assert isinstance(start, StartReply)
    roles = [m["role"] for m in start.messages]
    assert roles == ["system", "user", "assistant", "tool", "user"]
    assert orjson.loads(start.messages[3]["content"])["error"] == "cancelled"
    assert m.tool_finished(_ok(WEATHER), 3.0) == []


def test_an_interrupt_during_a_round_cancels_it() -> None:
    """ConversationRelay `interrupt` while the reply's tools run aborts the round too."""
    m = _machine()
    _asked(m)
    _round(m, WEATHER)
    interrupt = cr.Interrupt(utterance_until_interrupt="One", duration_until_interrupt_ms=200)
    commands = m.receive_phone(interrupt, 2.0)
    assert [type(c) for c in commands] == [CancelTool, AbortStream]
    assert not m.running


def _closing(m: RelayCall, action: EndCall | Transfer) -> str:
    """A turn whose round returns `action`; the follow-up reply spoke and ended; its id."""
    _asked(m, "Bye!")
    call = END if isinstance(action, EndCall) else ToolCall("c9", "transfer_call", "{}")
    _round(m, call)
    [follow_up] = m.tool_finished(_ok(call, "{}", action=action), 2.0)
    assert isinstance(follow_up, StartReply)
    rid = follow_up.response_id
    m.playout.clip_announced()  # type: ignore[union-attr]
    m.reply_audio(rid, 800.0, "Goodbye! ", 2.1)
    assert m.reply_spoken(rid, [], 2.2) == [Wake(0.2)]
    m.reply_finished(rid)
    return rid


def test_end_call_sends_end_after_the_last_clip_was_heard_then_closes() -> None:
    """end_call: `end` (no handoff) once the last clip was fetched and played (estimate), and
    the socket is closed if Twilio has not closed it END_GRACE_S later."""
    m = _machine()
    _closing(m, EndCall())
    assert m.wake(2.4) == [Wake(0.2)]  # the clip is not fetched yet
    m.playout.clip_fetched(800.0, 2.5)  # type: ignore[union-attr]
    [wait] = m.wake(2.6)
    assert isinstance(wait, Wake) and wait.after_s == pytest.approx(0.7 + END_MARGIN_S)
    end, grace = m.wake(3.6)
    assert isinstance(end, SendPhone) and orjson.loads(end.frame) == {"type": "end"}
    assert grace == Wake(END_GRACE_S)
    assert m.call.end_reason is EndReason.AGENT_ENDED and m.call.ended_by == "end_call"
    assert m.wake(5.6) == [StopCall()]


def test_transfer_ends_with_handoff_data_naming_the_destination() -> None:
    """transfer_call: `end` carries handoffData with the destination NAME, never a number."""
    m = _machine()
    _closing(m, Transfer("front_desk", "+18005550199"))
    m.playout.clip_fetched(800.0, 2.5)  # type: ignore[union-attr]
    end, _ = m.wake(10.0)
    assert isinstance(end, SendPhone)
    data = orjson.loads(end.frame)["handoffData"]
    assert handoff_destination(data) == "front_desk" and "+1800" not in data
    assert m.call.transfer == "front_desk" and m.call.ended_by == "transfer"


def test_caller_input_while_closing_starts_no_reply() -> None:
    """Once the agent ended the call, a prompt starts no new reply; an interrupt of the
    goodbye makes the end come sooner (nothing plays any more)."""
    m = _machine()
    _closing(m, EndCall())
    assert m.receive_phone(cr.Prompt(voice_prompt="Wait!", last=True), 2.3) == []
    m.receive_phone(cr.Interrupt(duration_until_interrupt_ms=100), 2.4)
    end, _ = m.wake(2.4 + END_MARGIN_S)
    assert isinstance(end, SendPhone) and orjson.loads(end.frame)["type"] == "end"


def test_playout_estimate_queues_clips_after_each_other() -> None:
    """Clips play in order once fetched; text ends after its speaking time; an unfetched clip
    keeps the estimate open; an interrupt stops everything."""
    p = Playout()
    p.clip_announced()
    p.clip_announced()
    p.clip_fetched(1000.0, 10.0)
    assert p.remaining_s(10.0) is None
    p.clip_fetched(500.0, 10.2)  # fetched while the first plays: it plays after it
    assert p.remaining_s(10.0) == pytest.approx(1.5 + END_MARGIN_S)
    p.spoken(1000.0, 20.0)
    assert p.remaining_s(20.5) == pytest.approx(0.5 + END_MARGIN_S)
    p.interrupted(20.6)
    assert p.remaining_s(21.0) == 0.0


def test_handoff_data_round_trip_and_the_number_comes_from_the_plan() -> None:
    """Only a transfer's handoffData names a destination; its number is the plan's."""
    assert handoff_destination(transfer_handoff("front_desk")) == "front_desk"
    for other in (None, "", "not json", '{"reasonCode":"live-agent-handoff"}', "[1]"):
        assert handoff_destination(other) is None
    config = parse_config({"numbers": {"+18005550102": {"mode": "relay-router", "agent": {
        "tools": [{"name": "transfer_call",
                   "destinations": {"front_desk": {"number": "+18005550199"}}}]}}}})  # fmt: skip
    plan = config.plan_for("+18005550102", "CA1")
    assert plan is not None
    assert destination_number(plan.agent.tools, "front_desk") == "+18005550199"
    assert destination_number(plan.agent.tools, "+18005550000") is None
    assert destination_number((), "front_desk") is None


def test_calls_after_the_last_round_are_left_out() -> None:
    """A model that calls tools even when told not to (after MAX_TOOL_ROUNDS): those calls
    are not run nor kept, so the history stays consistent and the turn ends."""
    m = _machine()
    _asked(m)
    for i in range(MAX_TOOL_ROUNDS):
        call = ToolCall(f"c{i}", "get_weather", "{}")
        _round(m, call)
        m.tool_finished(_ok(call), 2.0 + i)
    rid = m.reply or ""
    assert m.reply_spoken(rid, [ToolCall("c9", "get_weather", "{}")], 9.0) == []
    m.reply_finished(rid)
    assert not m.running
    assert all(c["id"] != "c9" for msg in m.call.history.messages()
               for c in msg.get("tool_calls") or ())  # fmt: skip
