"""`WebSocketChannel` over real aiohttp sockets (server and client end), through aiohttp's
documented WebSocket API only: frames both ways, binary frames, close reasons, and `abort` of a
peer that neither reads nor answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from voiceagent.errors import ChannelClosed
from voiceagent.transport.channel import WebSocketChannel


@asynccontextmanager
async def _pair() -> AsyncIterator[tuple[WebSocketChannel, WebSocketChannel]]:
    """A server channel and the client channel connected to it."""
    accepted: asyncio.Queue[WebSocketChannel] = asyncio.Queue()
    done = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await accepted.put(WebSocketChannel(ws))
        await done.wait()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"http://127.0.0.1:{port}/ws")
            server = await asyncio.wait_for(accepted.get(), 5)
            yield server, WebSocketChannel(ws)
            await ws.close()
    finally:
        done.set()
        await runner.cleanup()


async def test_frames_go_both_ways_and_a_close_names_its_code() -> None:
    """Text frames arrive in order both ways, a binary frame arrives as bytes, and once the
    peer closes `receive` returns None with the close code as the reason."""
    async with _pair() as (server, client):
        await client.send("one")
        await client.send("two")
        assert [await server.receive(), await server.receive()] == ["one", "two"]
        await server.send("back")
        assert await client.receive() == "back"
        await server.close(code=4000, reason="done")
        assert await asyncio.wait_for(client.receive(), 5) is None
        assert client.close_reason == "closed (4000)" and server.close_reason == "done"
        with pytest.raises(ChannelClosed):
            await server.send("late")


async def test_abort_ends_a_peer_that_neither_reads_nor_answers_within_a_second() -> None:
    """`abort` does not wait for the peer's closing handshake: a client that never reads is cut
    off within a second, and the server's own `receive` ends with the abort's reason."""
    async with _pair() as (server, client):
        receiving = asyncio.create_task(server.receive())
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await server.abort("phone silent for 20s")
        assert time.monotonic() - started < 1.5
        assert await asyncio.wait_for(receiving, 5) is None
        assert server.closed and server.close_reason == "phone silent for 20s"
        assert client.closed or await asyncio.wait_for(client.receive(), 5) is None
