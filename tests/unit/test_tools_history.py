"""Unit tests of tool calls in the history and of the tool telemetry fields."""

from __future__ import annotations

from typing import Any

from voiceagent.metrics import Metrics
from voiceagent.tools.calls import (
    EndCall,
    ToolCall,
    ToolOutcome,
    ToolResult,
    Transfer,
    cancelled,
    failed,
)
from voiceagent.tools.history import assistant_tool_calls, calls_of, consistent, tool_message
from voiceagent.tools.telemetry import log_fields, log_tool_call, metric_labels

CALL = ToolCall("call_1", "order_status", '{"order_id": "A-1234"}')
RESULT = ToolResult(CALL, ToolOutcome.OK, '{"status":"shipped"}', duration_ms=12.34)


def test_openai_shapes_of_call_and_result() -> None:
    """A call is an assistant message with tool_calls (content: heard text or None); its
    result a tool message with the call's id."""
    assert assistant_tool_calls([CALL]) == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "order_status", "arguments": '{"order_id": "A-1234"}'},
            }
        ],
    }
    assert assistant_tool_calls([CALL], "Let me check.")["content"] == "Let me check."
    assert tool_message(RESULT) == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": '{"status":"shipped"}',
    }


def test_broken_or_empty_arguments_are_sent_back_as_an_empty_object() -> None:
    """Arguments that are not a JSON object go back to the model as {} (providers refuse
    broken JSON in history); the call itself stays."""
    for raw in ("", "{oops", "[1]"):
        message = assistant_tool_calls([ToolCall("c", "end_call", raw)])
        assert message["tool_calls"][0]["function"]["arguments"] == "{}"


def test_consistent_keeps_answered_calls_next_to_their_results() -> None:
    """A complete exchange is unchanged; a result recorded after a later user message is
    moved right after its call."""
    user = {"role": "user", "content": "Where is my order?"}
    later = {"role": "user", "content": "Hello?"}
    call, result = assistant_tool_calls([CALL]), tool_message(RESULT)
    assert consistent([user, call, result]) == [user, call, result]
    assert consistent([user, call, later, result]) == [user, call, result, later]


def test_consistent_drops_unanswered_calls_and_orphan_results() -> None:
    """No tool_calls without results and no results without calls reach the model; spoken
    text of a call message with no answered calls is kept as a plain message."""
    other = ToolCall("call_2", "end_call", "{}")
    both = assistant_tool_calls([CALL, other], "One moment.")
    orphan = {"role": "tool", "tool_call_id": "call_zz", "content": "{}"}
    out = consistent([both, tool_message(RESULT), orphan])
    assert [m["role"] for m in out] == ["assistant", "tool"]
    assert [c["id"] for c in out[0]["tool_calls"]] == ["call_1"]
    unanswered = consistent([assistant_tool_calls([other], "Bye now."), orphan])
    assert unanswered == [{"role": "assistant", "content": "Bye now."}]
    assert consistent([assistant_tool_calls([other])]) == []


def test_consistent_after_a_barge_in_with_a_cancelled_result() -> None:
    """A call cut by the caller is answered with its cancelled result, so it stays."""
    messages = [assistant_tool_calls([CALL]), tool_message(cancelled(CALL))]
    assert consistent(messages) == messages


class ListLogger:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append(("info", event, fields))

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append(("warning", event, fields))


def test_log_line_has_arguments_only_when_transcripts_are_recorded() -> None:
    """tool_called names the tool, outcome and duration; arguments only with transcripts."""
    log = ListLogger()
    log_tool_call(log, RESULT, record_transcripts=False)
    log_tool_call(log, RESULT, record_transcripts=True)
    (level, event, private), (_, _, recorded) = log.lines
    assert (level, event) == ("info", "tool_called")
    assert private == {"tool": "order_status", "call_id": "call_1", "outcome": "ok",
                       "duration_ms": 12.3}  # fmt: skip
    assert recorded["arguments"] == '{"order_id": "A-1234"}'


def test_log_fields_name_actions_and_failures() -> None:
    """Transfers name the destination (never the number); failures carry a short detail and
    are warnings."""
    transfer = ToolResult(CALL, ToolOutcome.OK, "{}", action=Transfer("front_desk", "+1800", None))
    fields = log_fields(transfer, record_transcripts=False)
    assert fields["action"] == "transfer" and fields["destination"] == "front_desk"
    assert "+1800" not in str(fields)
    end = ToolResult(CALL, ToolOutcome.OK, "{}", action=EndCall())
    assert log_fields(end, False)["action"] == "end_call"
    log = ListLogger()
    log_tool_call(log, failed(CALL, ToolOutcome.TIMEOUT, "slow", detail="timeout after 4 s"), False)
    [(level, _, fields)] = log.lines
    assert level == "warning" and fields["detail"] == "timeout after 4 s"


def test_metric_labels_are_bounded() -> None:
    """A declared tool is its own label; a name the model invented is `other`."""
    assert metric_labels(RESULT) == ("order_status", "ok")
    invented = failed(ToolCall("c", "x" * 500, "{}"), ToolOutcome.UNKNOWN_TOOL, "no such tool")
    assert metric_labels(invented) == ("other", "unknown_tool")


def test_prometheus_counts_tool_calls_by_tool_and_outcome() -> None:
    """Metrics.tool_call counts by (tool, outcome) and observes the duration."""
    metrics = Metrics()
    metrics.tool_call(RESULT)
    metrics.tool_call(failed(ToolCall("c", "made_up", "{}"), ToolOutcome.UNKNOWN_TOOL, "no"))
    text = metrics.exposition().decode()
    assert 'voiceagent_tool_calls_total{outcome="ok",tool="order_status"} 1.0' in text
    assert 'voiceagent_tool_calls_total{outcome="unknown_tool",tool="other"} 1.0' in text
    assert 'voiceagent_tool_duration_seconds_count{tool="order_status"} 1.0' in text


def test_calls_of_reads_back_an_assistant_message() -> None:
    """calls_of turns a stored assistant tool_calls message back into ToolCalls."""
    other = ToolCall("call_2", "end_call", "{}")
    assert calls_of(assistant_tool_calls([CALL, other], "Hm.")) == (CALL, other)
    assert calls_of({"role": "assistant", "content": "Hi"}) == ()
