"""Unit tests of function calls tracked from Realtime events and Router tool_calls pieces."""

from __future__ import annotations

from typing import Any

import pytest

from voiceagent.errors import ProtocolError
from voiceagent.protocols import inworld_realtime as rt
from voiceagent.tools.calls import ToolCall
from voiceagent.tools.realtime_calls import FunctionCallTracker
from voiceagent.tools.router_calls import (
    ToolCallAccumulator,
    ToolCallDelta,
    parse_tool_call_deltas,
    tool_call_chunks,
)


def ev(obj: dict[str, Any]) -> Any:
    return rt.validate_server_event(obj)


def item_added(call_id: str = "call_1", name: str = "get_weather", kind: str = "response"):
    item = {"id": "item_f1", "type": "function_call", "status": "in_progress",
            "call_id": call_id, "name": name, "arguments": ""}  # fmt: skip
    if kind == "response":
        return ev({"type": "response.output_item.added", "response_id": "resp_2", "item": item})
    return ev({"type": "conversation.item.added", "item": item})


def args_delta(delta: str) -> Any:
    return ev({"type": "response.function_call_arguments.delta", "response_id": "resp_2",
               "item_id": "item_f1", "call_id": "call_1", "delta": delta})  # fmt: skip


def args_done(arguments: str, name: str | None = None, call_id: str | None = "call_1") -> Any:
    event = {"type": "response.function_call_arguments.done", "response_id": "resp_2",
             "item_id": "item_f1", "arguments": arguments}  # fmt: skip
    if call_id:
        event["call_id"] = call_id
    if name:
        event["name"] = name
    return ev(event)


def response_done(status: str = "completed", rid: str = "resp_2") -> Any:
    return ev({"type": "response.done", "response": {"id": rid, "status": status}})


def feed(tracker: FunctionCallTracker, *events: Any) -> list[ToolCall]:
    out: list[ToolCall] = []
    for event in events:
        out += tracker.on_event(event)
    return out


@pytest.mark.parametrize("announced_by", ["response", "conversation"])
def test_name_missing_on_done_is_taken_from_the_item(announced_by: str) -> None:
    """arguments.done without `name` resolves it from the item announced earlier."""
    tracker = FunctionCallTracker()
    calls = feed(tracker, item_added(kind=announced_by), args_delta('{"city":'),
                 args_delta('"Paris"}'), args_done('{"city":"Paris"}'))  # fmt: skip
    assert calls == [ToolCall("call_1", "get_weather", '{"city":"Paris"}')]


def test_call_found_by_item_id_when_done_lacks_call_id() -> None:
    """arguments.done with only the item id still finds the call (and the deltas' text)."""
    tracker = FunctionCallTracker()
    calls = feed(tracker, item_added(), args_delta('{"a":1}'), args_done("", call_id=None))
    assert calls == [ToolCall("call_1", "get_weather", '{"a":1}')]


def test_each_call_is_returned_once() -> None:
    """arguments.done then output_item.done (or conversation.item.done) give one call."""
    tracker = FunctionCallTracker()
    done_item = {"id": "item_f1", "type": "function_call", "status": "completed",
                 "call_id": "call_1", "name": "get_weather", "arguments": "{}"}  # fmt: skip
    calls = feed(
        tracker, item_added(), args_done("{}", name="get_weather"),
        ev({"type": "response.output_item.done", "response_id": "resp_2", "item": done_item}),
        ev({"type": "conversation.item.done", "item": done_item}),
    )  # fmt: skip
    assert len(calls) == 1


def test_output_item_done_alone_completes_a_call() -> None:
    """A server that sends no arguments.done still completes the call from the item."""
    tracker = FunctionCallTracker()
    done_item = {"id": "item_f1", "type": "function_call", "status": "completed",
                 "call_id": "call_1", "name": "end_call", "arguments": ""}  # fmt: skip
    calls = feed(tracker, ev({"type": "response.output_item.done", "item": done_item}))
    assert calls == [ToolCall("call_1", "end_call", "")]


def test_messages_and_other_events_are_ignored() -> None:
    """Assistant message items and audio events are not calls."""
    tracker = FunctionCallTracker()
    message = {"id": "item_a1", "type": "message", "role": "assistant", "content": []}
    calls = feed(
        tracker,
        ev({"type": "response.output_item.added", "response_id": "resp_1", "item": message}),
        ev({"type": "response.output_audio.delta", "response_id": "resp_1", "delta": "AAAA"}),
        response_done(rid="resp_1"),
    )
    assert calls == [] and tracker.pending == () and not tracker.needs_follow_up


def test_pending_until_output_sent_then_follow_up_needed_until_a_response_starts() -> None:
    """A complete call awaits its output; once every output of the response is sent, a
    follow-up is needed until any response is created (Inworld's own, or ours)."""
    tracker = FunctionCallTracker()
    [call] = feed(tracker, item_added(), args_done("{}"))
    assert tracker.pending == (call,)
    tracker.output_sent("call_1")
    assert tracker.pending == () and not tracker.needs_follow_up  # response not done yet
    feed(tracker, response_done())
    assert tracker.needs_follow_up
    feed(tracker, ev({"type": "response.created", "response": {"id": "resp_3"}}))
    assert not tracker.needs_follow_up
    tracker.output_sent("call_1")  # a repeat changes nothing
    assert not tracker.needs_follow_up


def test_follow_up_waits_for_every_call_of_the_response() -> None:
    """With two calls in one response, the follow-up is needed only after both outputs."""
    tracker = FunctionCallTracker()
    second = {"id": "item_f2", "type": "function_call", "call_id": "call_2", "name": "end_call"}
    feed(
        tracker, item_added(), args_done("{}"),
        ev({"type": "response.output_item.added", "response_id": "resp_2", "item": second}),
        ev({"type": "response.function_call_arguments.done", "response_id": "resp_2",
            "call_id": "call_2", "arguments": ""}),
        response_done(),
    )  # fmt: skip
    tracker.output_sent("call_1")
    assert not tracker.needs_follow_up and [c.call_id for c in tracker.pending] == ["call_2"]
    tracker.output_sent("call_2")
    assert tracker.needs_follow_up


def test_call_cut_by_a_cancelled_response_is_dropped() -> None:
    """A call whose response was cancelled before its arguments were done never happened."""
    tracker = FunctionCallTracker()
    calls = feed(tracker, item_added(), args_delta('{"ci'), response_done("cancelled"))
    assert calls == [] and tracker.pending == () and not tracker.needs_follow_up


# --- Router ---------------------------------------------------------------------------------


def test_accumulator_joins_pieces_by_index() -> None:
    """Ids and names come with the first piece, arguments arrive in pieces, calls may
    interleave; the result is in index order."""
    acc = ToolCallAccumulator()
    acc.feed([ToolCallDelta(0, "call_a", "get_weather", "")])
    acc.feed([ToolCallDelta(1, "call_b", "end_call", ""), ToolCallDelta(0, None, None, '{"ci')])
    acc.feed([ToolCallDelta(0, None, None, 'ty":"Paris"}'), ToolCallDelta(1, None, None, "{}")])
    assert acc.calls() == [
        ToolCall("call_a", "get_weather", '{"city":"Paris"}'),
        ToolCall("call_b", "end_call", "{}"),
    ]


def test_accumulator_keeps_first_id_and_name_and_names_idless_calls() -> None:
    """A provider repeating id/name in each piece does not double them; no id gets call_<i>."""
    acc = ToolCallAccumulator()
    assert not acc
    acc.feed([ToolCallDelta(0, None, "end_call", "{"), ToolCallDelta(0, None, "end_call", "}")])
    assert acc and acc.calls() == [ToolCall("call_0", "end_call", "{}")]


def test_encoded_chunks_parse_back_to_the_same_calls() -> None:
    """The fake's encoder and the client's parser + accumulator agree, piece size aside."""
    calls = [ToolCall("call_x", "order_status", '{"order_id": "A-1234"}'), ToolCall("c2", "n", "")]
    acc = ToolCallAccumulator()
    chunks = tool_call_chunks("chatcmpl-1", "m", calls, piece_chars=5)
    for chunk in chunks:
        acc.feed(parse_tool_call_deltas(chunk["choices"][0]["delta"].get("tool_calls")))
    assert acc.calls() == calls
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert len(chunks) > 3


@pytest.mark.parametrize(
    "value", [{"index": 0}, ["x"], [{"index": "0"}], [{"index": 0, "function": {"name": 3}}]]
)
def test_malformed_tool_call_deltas_raise_protocol_error(value: Any) -> None:
    """A delta.tool_calls that is not a list of well-typed pieces is a ProtocolError."""
    with pytest.raises(ProtocolError):
        parse_tool_call_deltas(value)
