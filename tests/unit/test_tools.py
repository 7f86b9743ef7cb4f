"""Unit tests of tool declarations, argument checks and the built-ins (no sockets)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from voiceagent.config import parse_config
from voiceagent.tools.calls import (
    EndCall,
    ToolCall,
    ToolOutcome,
    ToolResult,
    Transfer,
    cancelled,
)
from voiceagent.tools.spec import HttpToolSpec, ToolSpec
from voiceagent.tools.toolbox import Toolbox

ORDER_TOOL: dict[str, Any] = {
    "name": "order_status",
    "description": "Status of an order.",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string", "pattern": "^[A-Z]-[0-9]{4}$"}},
        "required": ["order_id"],
        "additionalProperties": False,
    },
    "url": "https://orders.example/orders/{order_id}/status",
    "method": "GET",
}
TRANSFER: dict[str, Any] = {
    "name": "transfer_call",
    "destinations": {
        "front_desk": {"number": "+18005550199", "announcement": "Connecting you now."},
        "billing": {"number": "+18005550198", "description": "invoices and refunds"},
    },
}


def _specs(*tools: dict[str, Any]) -> tuple[ToolSpec, ...]:
    config = parse_config({"defaults": {"agent": {"tools": list(tools)}}}, environ={})
    return config.defaults.agent.tools


class RecordingRunner:
    """A ToolRunner that answers every HTTP tool with a fixed JSON and records the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Mapping[str, Any]]] = []

    async def run(
        self, spec: HttpToolSpec, call: ToolCall, arguments: Mapping[str, Any]
    ) -> ToolResult:
        self.calls.append((spec.name, arguments))
        return ToolResult(call, ToolOutcome.OK, '{"status":"shipped"}')


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.25
        return self.now


def test_realtime_declarations_are_ga_flat_and_router_ones_nested() -> None:
    """Realtime gets {type,name,description,parameters}; the Router gets them under function."""
    box = Toolbox(_specs({"name": "end_call"}, ORDER_TOOL))
    realtime, router = box.realtime_tools(), box.router_tools()
    assert realtime[1] == {
        "type": "function",
        "name": "order_status",
        "description": "Status of an order.",
        "parameters": ORDER_TOOL["parameters"],
    }
    assert router[1] == {
        "type": "function",
        "function": {k: v for k, v in realtime[1].items() if k != "type"},
    }
    assert realtime[0]["parameters"]["properties"] == {}


def test_transfer_declares_only_destination_names() -> None:
    """transfer_call's only parameter is an enum of destination names: no number reaches the
    model, and each destination's description helps it choose."""
    [declared] = Toolbox(_specs(TRANSFER)).realtime_tools()
    destination = declared["parameters"]["properties"]["destination"]
    assert destination["enum"] == ["front_desk", "billing"]
    assert "billing: invoices and refunds" in destination["description"]
    assert "+1800" not in orjson.dumps(declared).decode()
    assert declared["parameters"]["required"] == ["destination"]


async def test_transfer_to_a_listed_destination_returns_the_action() -> None:
    """A listed name gives Transfer(name, its number, its announcement); the output tells the
    model to say the announcement."""
    result = await Toolbox(_specs(TRANSFER)).run(
        ToolCall("c1", "transfer_call", '{"destination": "front_desk"}')
    )
    assert result.outcome is ToolOutcome.OK
    assert result.action == Transfer("front_desk", "+18005550199", "Connecting you now.")
    assert "Connecting you now." in orjson.loads(result.output)["message"]


@pytest.mark.parametrize(
    "arguments", ['{"destination": "+15551234567"}', '{"destination": "mars"}', "{}"]
)
async def test_transfer_elsewhere_is_refused_to_the_model(arguments: str) -> None:
    """A number, an unlisted name or no destination is refused with no action, and the
    model is told the allowed names."""
    result = await Toolbox(_specs(TRANSFER)).run(ToolCall("c1", "transfer_call", arguments))
    assert result.outcome is ToolOutcome.INVALID_ARGUMENTS and result.action is None
    body = orjson.loads(result.output)
    assert body["error"] == "invalid_arguments"
    assert "front_desk" in body["message"] or "destination" in body["message"]


async def test_end_call_returns_the_end_action() -> None:
    """end_call (no arguments, or an empty text) gives EndCall."""
    box = Toolbox(_specs({"name": "end_call"}))
    for arguments in ("", "{}"):
        result = await box.run(ToolCall("c1", "end_call", arguments))
        assert result.outcome is ToolOutcome.OK and result.action == EndCall()


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ('{"order_id": 1234}', "is not of type 'string'"),
        ('{"order_id": "1234"}', "does not match"),
        ('{"order_id": "A-1234", "extra": 1}', "Additional properties"),
        ("{not json", "not valid JSON"),
        ("[1]", "must be a JSON object"),
    ],
)
async def test_invalid_arguments_never_reach_the_runner(arguments: str, words: str) -> None:
    """Arguments that are not JSON or break the schema are refused before any request."""
    runner = RecordingRunner()
    result = await Toolbox(_specs(ORDER_TOOL), runner).run(
        ToolCall("c1", "order_status", arguments)
    )
    assert result.outcome is ToolOutcome.INVALID_ARGUMENTS
    assert words in orjson.loads(result.output)["message"]
    assert runner.calls == []


async def test_valid_arguments_reach_the_runner_with_duration() -> None:
    """Valid arguments go to the runner as a dict; the result carries the clock's duration."""
    runner = RecordingRunner()
    box = Toolbox(_specs(ORDER_TOOL), runner, clock=Clock())
    result = await box.run(ToolCall("c1", "order_status", '{"order_id": "A-1234"}'))
    assert result.ok and result.output == '{"status":"shipped"}'
    assert runner.calls == [("order_status", {"order_id": "A-1234"})]
    assert result.duration_ms == pytest.approx(250.0)


async def test_unknown_tool_lists_the_available_ones() -> None:
    """A name the number does not declare is refused, naming the tools it has."""
    result = await Toolbox(_specs({"name": "end_call"})).run(ToolCall("c1", "rm_rf", "{}"))
    assert result.outcome is ToolOutcome.UNKNOWN_TOOL
    assert "end_call" in orjson.loads(result.output)["message"]


async def test_http_tool_without_a_runner_is_unreachable() -> None:
    """With no runner wired, an HTTP tool fails softly instead of raising."""
    result = await Toolbox(_specs(ORDER_TOOL)).run(
        ToolCall("c1", "order_status", '{"order_id": "A-1234"}')
    )
    assert result.outcome is ToolOutcome.UNREACHABLE


def test_cancelled_result_tells_the_model_it_did_not_complete() -> None:
    """A call cut by a barge-in still gets an output, saying it was not completed."""
    result = cancelled(ToolCall("c9", "order_status", "{}"))
    assert result.outcome is ToolOutcome.CANCELLED and result.action is None
    assert orjson.loads(result.output)["error"] == "cancelled"
