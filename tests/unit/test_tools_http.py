"""The HTTP tool runner against the in-process tool server: answers, errors, secrets, limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from voiceagent.config import parse_config
from voiceagent.errors import ConfigError
from voiceagent.sim.tool_server import ToolServer
from voiceagent.tools.calls import ToolCall, ToolOutcome
from voiceagent.tools.http_runner import HttpToolRunner, build_request
from voiceagent.tools.spec import HttpToolSpec
from voiceagent.tools.toolbox import Toolbox

TOKEN = "tool-secret-123"
ORDER_PARAMS = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}},
    "required": ["order_id"],
}


def _spec(url: str, **fields: Any) -> HttpToolSpec:
    tool = {"name": "order_status", "description": "Order status.", "url": url, **fields}
    tool.setdefault("parameters", ORDER_PARAMS)
    tool.setdefault("headers", {"Authorization": {"env": "ORDERS_TOKEN", "prefix": "Bearer "}})
    config = parse_config({"defaults": {"agent": {"tools": [tool]}}}, environ={"ORDERS_TOKEN": "x"})
    spec = config.defaults.agent.tools[0]
    assert isinstance(spec, HttpToolSpec)
    return spec


@pytest.fixture
async def server() -> AsyncIterator[ToolServer]:
    async with ToolServer(token=TOKEN, slow_s=5.0) as tool_server:
        yield tool_server


async def _run(spec: HttpToolSpec, arguments: str, environ: dict[str, str] | None = None) -> Any:
    async with aiohttp.ClientSession() as http:
        runner = HttpToolRunner(http, {"ORDERS_TOKEN": TOKEN} if environ is None else environ)
        return await Toolbox([spec], runner).run(ToolCall("call_1", spec.name, arguments))


def test_build_request_quotes_path_arguments_and_resolves_secrets() -> None:
    """A URL placeholder takes its argument URL-quoted (no path or host injection); the
    secret header is read from the environment at call time; an unset optional one is left out."""
    spec = _spec(
        "https://orders.example/orders/{order_id}/status",
        method="GET",
        headers={
            "Authorization": {"env": "ORDERS_TOKEN", "prefix": "Bearer "},
            "X-Trace": {"env": "UNSET_VAR", "optional": True},
            "Accept-Language": "en",
        },
    )
    request = build_request(spec, {"order_id": "../admin?x=1#"}, {"ORDERS_TOKEN": "abc"})
    assert request.url == "https://orders.example/orders/..%2Fadmin%3Fx%3D1%23/status"
    assert request.params == {} and request.json is None
    assert request.headers["Authorization"] == "Bearer abc"
    assert request.headers["Accept-Language"] == "en" and "X-Trace" not in request.headers


def test_build_request_query_for_get_and_json_body_for_post() -> None:
    """GET sends scalar arguments as the query (booleans as true/false); POST a JSON body."""
    get = _spec("https://x.example/w", method="GET")
    request = build_request(get, {"city": "Paris", "metric": True, "days": 2}, {})
    assert request.params == {"city": "Paris", "metric": "true", "days": "2"}
    post = build_request(_spec("https://x.example/w", method="POST"), {"a": [1]}, {})
    assert post.json == {"a": [1]} and post.params == {}


async def test_json_answer_goes_back_to_the_model(server: ToolServer) -> None:
    """A 2xx JSON answer is the output; the request carried the secret header and the path."""
    spec = _spec(server.url_for("/orders/{order_id}/status"), method="GET")
    result = await _run(spec, '{"order_id": "A-1234"}')
    assert result.outcome is ToolOutcome.OK
    assert orjson.loads(result.output)["status"] == "shipped"
    [request] = server.requests
    assert request.path == "/orders/A-1234/status"
    assert request.authorization == f"Bearer {TOKEN}"


async def test_post_sends_the_arguments_as_json(server: ToolServer) -> None:
    """POST tools send the validated arguments as the JSON body."""
    result = await _run(_spec(server.url_for("/orders/status")), '{"order_id": "B-5678"}')
    assert orjson.loads(result.output)["status"] == "being packed"
    assert server.requests[0].body == {"order_id": "B-5678"}


@pytest.mark.parametrize(
    ("path", "outcome", "words"),
    [
        ("/orders/status", ToolOutcome.HTTP_ERROR, "HTTP 404"),
        ("/fail", ToolOutcome.HTTP_ERROR, "HTTP 500"),
        ("/text", ToolOutcome.BAD_RESPONSE, "could not be read"),
        ("/big", ToolOutcome.BAD_RESPONSE, "too much data"),
    ],
)
async def test_failures_become_short_recoverable_errors(
    server: ToolServer, path: str, outcome: ToolOutcome, words: str
) -> None:
    """Non-2xx, non-JSON and oversized answers come back as a short error for the model."""
    result = await _run(_spec(server.url_for(path)), '{"order_id": "nope"}')
    assert result.outcome is outcome
    body = orjson.loads(result.output)
    assert body["error"] == outcome.value and words in body["message"]
    assert len(result.output) < 400


async def test_timeout_is_reported_to_the_model(server: ToolServer) -> None:
    """A tool slower than its timeout_s gives a timeout error, not an exception."""
    result = await _run(_spec(server.url_for("/slow"), timeout_s=0.2), '{"order_id": "A-1234"}')
    assert result.outcome is ToolOutcome.TIMEOUT
    assert "did not answer within 0.2 s" in orjson.loads(result.output)["message"]


async def test_wrong_secret_is_an_http_error_and_never_in_the_output(server: ToolServer) -> None:
    """A wrong token gets the tool's 401 as an error; the secret is not in what the model sees."""
    spec = _spec(server.url_for("/orders/status"))
    result = await _run(spec, '{"order_id": "A-1234"}', environ={"ORDERS_TOKEN": "wrong-one"})
    assert result.outcome is ToolOutcome.HTTP_ERROR and "401" in result.output
    assert "wrong-one" not in result.output and "wrong-one" not in result.detail


async def test_unreachable_tool() -> None:
    """A refused connection is an `unreachable` error for the model."""
    async with ToolServer() as gone:
        url = gone.url_for("/orders/status")
    result = await _run(_spec(url), '{"order_id": "A-1234"}')
    assert result.outcome is ToolOutcome.UNREACHABLE


@pytest.mark.parametrize("value", ["..", ".", ""])
async def test_dot_segment_argument_never_changes_the_path(server: ToolServer, value: str) -> None:
    """A path argument of `..`, `.` or nothing is refused before any request, so the tool
    server never sees a collapsed path such as `/status`."""
    spec = _spec(server.url_for("/orders/{order_id}/status"), method="GET")
    result = await _run(spec, orjson.dumps({"order_id": value}).decode())
    assert result.outcome is ToolOutcome.INVALID_ARGUMENTS
    assert "may not be empty" in orjson.loads(result.output)["message"]
    assert server.requests == []


async def test_query_value_placeholder_is_quoted_in_place(server: ToolServer) -> None:
    """A whole query value placeholder takes its argument quoted: `&` and `=` in it stay in
    that one value and add no query parameter."""
    spec = _spec(server.url_for("/orders/{order_id}/status?ref={order_id}"), method="GET")
    result = await _run(spec, '{"order_id": "A-1234&admin=1"}')
    assert result.outcome is ToolOutcome.HTTP_ERROR  # the fake knows no such order
    [request] = server.requests
    assert request.path == "/orders/A-1234&admin=1/status"
    assert request.query == {"ref": "A-1234&admin=1"}


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://{order_id}/v1", "in the host"),
        ("http://127.0.0.1:{order_id}/v1", "in the host"),
        ("http://user:{order_id}@127.0.0.1/v1", "in the host"),
        ("http://127.0.0.1/v1/x{order_id}", "whole path segment"),
        ("http://127.0.0.1/v1/{order_id}.json", "whole path segment"),
        ("http://127.0.0.1/v1?{order_id}=1", "query key"),
        ("http://127.0.0.1/v1?q=a{order_id}", "whole query value"),
        ("http://127.0.0.1/v1#{order_id}", "in the fragment"),
    ],
)
def test_placeholder_outside_a_segment_or_value_is_refused(url: str, words: str) -> None:
    """`check-config` refuses a placeholder that could let the model choose the host, the port
    or part of a segment; only whole path segments and whole query values are allowed."""
    with pytest.raises(ConfigError) as err:
        _spec(url)
    assert words in str(err.value)
