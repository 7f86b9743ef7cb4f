"""Issue 25, item 7 on the real listener: read deadlines for request heads and bodies (set by
`voiceagent serve`'s runner, not only behind HAProxy), and clips that no cache may keep."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from tests.rig import PUBLIC, RELAY, TOKEN, Rig, rig_config
from voiceagent.app import create_app
from voiceagent.settings import Settings
from voiceagent.sim.script import Listen
from voiceagent.web.read_limits import runner_options


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def listener() -> AsyncIterator[int]:
    """The app behind the runner `voiceagent serve` builds (1 s read deadlines); its port."""
    settings = Settings(public_url=PUBLIC, twilio_auth_token=TOKEN, database_url="",
                        http_header_timeout=1.0, http_body_timeout=1.0)  # fmt: skip
    runner = web.AppRunner(create_app(settings, rig_config()), **runner_options(settings))
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


async def _trickle(port: int, head: bytes, then: bytes, every_s: float) -> tuple[bytes, float]:
    """Send `head`, then `then` one byte per `every_s`; what the server answered before it
    closed the connection, and after how many seconds."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    began = time.monotonic()
    writer.write(head)

    async def drip() -> None:
        for byte in then:
            await asyncio.sleep(every_s)
            writer.write(bytes([byte]))

    dripping = asyncio.create_task(drip())
    try:
        async with asyncio.timeout(8):
            answer = await reader.read()
    finally:
        dripping.cancel()
        writer.close()
    return answer, time.monotonic() - began


async def test_a_trickled_request_head_is_cut_off(listener: int) -> None:
    """A client that sends its request head one byte every 100 ms is disconnected once the
    header deadline (1 s) passed, instead of holding the connection for an hour."""
    head = b"POST /voice HTTP/1.1\r\nHost: x\r\n"
    answer, seconds = await _trickle(listener, head, b"X-Slow: " + b"a" * 200, 0.1)
    assert seconds < 4 and b"200 OK" not in answer


async def test_a_trickled_body_gets_408(listener: int) -> None:
    """A body promised as 100 bytes and sent one byte every 100 ms gets 408 once the body
    deadline (1 s) passed."""
    head = (b"POST /voice HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\nCallSid=")  # fmt: skip
    answer, seconds = await _trickle(listener, head, b"a" * 92, 0.1)
    assert answer.startswith(b"HTTP/1.1 408") and seconds < 4


async def test_clips_are_never_cached(start_rig: Any) -> None:
    """A relay clip (and an unknown clip's 404) is answered with `Cache-Control: no-store`."""
    rig: Rig = await start_rig()
    record = await rig.place_call(RELAY, [Listen()])
    url = record.clips[0].url.replace(PUBLIC, rig.base_url)
    for method in ("GET", "HEAD"):
        async with rig.http.request(method, url) as resp:
            assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    async with rig.http.get(rig.base_url + "/audio/" + "x" * 20 + ".wav") as resp:
        assert resp.status == 404 and resp.headers["Cache-Control"] == "no-store"
