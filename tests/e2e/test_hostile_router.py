"""Issue 25: a hostile or broken Router (a real aiohttp server on 127.0.0.1 in place of the
fake) costs the call one apology within a deadline, never a hung turn or unbounded memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.rig import RELAY, StartRig
from voiceagent.sim.script import HangUp, Listen

CHUNK = b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{}}]}\n\n'


async def _endless_error(request: web.Request) -> web.StreamResponse:
    """A 500 whose body promises 100 KB and never completes."""
    response = web.StreamResponse(status=500, headers={"Content-Length": "100000"})
    await response.prepare(request)
    await response.write(b'{"error": {"message": "')
    await asyncio.sleep(3600)
    return response


async def _sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    return response


async def _endless_line(request: web.Request) -> web.StreamResponse:
    """One `data:` line that never ends, sent in 64 KiB pieces (up to 64 MiB)."""
    response = await _sse(request)
    await response.write(b"data: ")
    piece = b"x" * 65536
    for _ in range(1024):
        await response.write(piece)
    await asyncio.sleep(3600)
    return response


async def _keepalive(request: web.Request) -> web.StreamResponse:
    """Only `: keepalive` comments, every 50 ms, forever."""
    response = await _sse(request)
    while True:
        await response.write(b": keepalive\n\n")
        await asyncio.sleep(0.05)


async def _slow_drip(request: web.Request) -> web.StreamResponse:
    """A valid empty chunk every 200 ms and never `[DONE]`: no stall, but no end either."""
    response = await _sse(request)
    while True:
        await response.write(CHUNK)
        await asyncio.sleep(0.2)


@pytest.fixture
async def hostile_router() -> AsyncIterator[str]:
    """A Router that misbehaves in one way per path; yields its base URL."""
    app = web.Application()
    for path, handler in (("/endless-error", _endless_error), ("/endless-line", _endless_line),
                          ("/keepalive", _keepalive), ("/slow-drip", _slow_drip)):  # fmt: skip
        app.router.add_post(path, handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("path", "failure"),
    [
        ("/endless-error", "unavailable"),
        ("/endless-line", "error"),
        ("/keepalive", "timeout"),
        ("/slow-drip", "timeout"),
    ],
)
async def test_hostile_router_reply_ends_in_the_apology(
    start_rig: StartRig, hostile_router: str, path: str, failure: str
) -> None:
    """An error body that never completes, an SSE line that never ends, a stream of only
    keepalive comments, or a reply that never reaches `[DONE]`: within the deadlines the caller
    hears the apology, and the failure is counted as an upstream error of its kind."""
    rig = await start_rig(
        inworld_router_url=hostile_router + path,
        router_first_byte_timeout=1.0,
        router_reply_timeout=2.5,
    )
    async with asyncio.timeout(15):
        record = await rig.place_call(RELAY, [Listen(timeout_ms=10_000), HangUp()])
        call = await rig.ended(record.call_sid)
    assert record.turns[0].text == "Sorry, a glitch."
    assert call.counters.upstream_errors == 1
    assert rig.calls.turns_of(call.call_sid)[0].failed == failure
