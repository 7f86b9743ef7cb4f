"""Frames taken as they arrive (`Channel.intercept`) over a real aiohttp WebSocket served by
`InterceptingWebSocketResponse`: a hook sees a frame only while `receive` waits with nothing
queued, what it declines comes to `receive`, and the order of what is left is kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from voiceagent.transport import intercept
from voiceagent.transport.channel import ChannelClosed, WebSocketChannel
from voiceagent.transport.intercept import InterceptingWebSocketResponse


class _Server:
    """One WebSocket served by InterceptingWebSocketResponse; its channel for the test."""

    def __init__(self) -> None:
        self.channel: asyncio.Future[WebSocketChannel] = asyncio.get_running_loop().create_future()
        self.done = asyncio.Event()

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = InterceptingWebSocketResponse()
        await ws.prepare(request)
        self.channel.set_result(WebSocketChannel(ws))
        await self.done.wait()
        return ws


@asynccontextmanager
async def _serving() -> AsyncIterator[tuple[WebSocketChannel, aiohttp.ClientWebSocketResponse]]:
    """(server channel, client socket) over a real WebSocket on 127.0.0.1."""
    server = _Server()
    app = web.Application()
    app.router.add_get("/ws", server.handler)
    async with TestServer(app, host="127.0.0.1") as test_server, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(test_server.make_url("/ws"))
        try:
            yield await server.channel, ws
        finally:
            server.done.set()
            await ws.close()


@pytest.fixture
async def socket_pair() -> AsyncIterator[tuple[WebSocketChannel, WebSocketChannel]]:
    """(server channel, client channel) over a real WebSocket on 127.0.0.1."""
    async with _serving() as (ours, ws):
        yield ours, WebSocketChannel(ws)


async def test_hook_takes_frames_while_receive_waits_over_a_socket(
    socket_pair: tuple[WebSocketChannel, WebSocketChannel],
) -> None:
    ours, peer = socket_pair
    taken: list[str] = []
    assert ours.intercept(lambda text: text.startswith("take") and not taken.append(text))
    receiving = asyncio.create_task(ours.receive())
    await asyncio.sleep(0)  # receive now waits
    for text in ("take 1", "take 2", "keep 3"):
        await peer.send(text)
    assert await asyncio.wait_for(receiving, 5) == "keep 3"
    for text in ("take 4", "keep 5"):
        await peer.send(text)
    await asyncio.sleep(0.2)  # both arrive while nobody receives: queued, never offered
    assert await asyncio.wait_for(ours.receive(), 5) == "take 4"
    assert await asyncio.wait_for(ours.receive(), 5) == "keep 5"
    assert taken == ["take 1", "take 2"]
    assert ours.intercept(None)
    receiving = asyncio.create_task(ours.receive())
    await peer.send("take 6")
    assert await asyncio.wait_for(receiving, 5) == "take 6"  # no hook: every frame comes


async def test_send_nowait_writes_at_once_only_while_writable(
    socket_pair: tuple[WebSocketChannel, WebSocketChannel],
) -> None:
    ours, peer = socket_pair
    assert peer.writable
    peer.send_nowait("now")
    assert await asyncio.wait_for(ours.receive(), 5) == "now"
    closing = asyncio.create_task(peer.close())
    assert await asyncio.wait_for(ours.receive(), 5) is None  # the close handshake, answered
    await asyncio.wait_for(closing, 5)
    assert not peer.writable
    with pytest.raises(ChannelClosed):
        await peer.send("after close")


async def test_client_channel_cannot_intercept(
    socket_pair: tuple[WebSocketChannel, WebSocketChannel],
) -> None:
    _, peer = socket_pair
    assert not peer.intercept(lambda text: True)  # frames keep coming to receive()


async def test_an_aiohttp_that_does_not_fit_falls_back_to_its_own_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where the intercepting queue cannot be built, the socket works as aiohttp's own and
    `intercept` says so: every frame comes to `receive`."""

    def unfit(*args: object, **kwargs: object) -> None:
        raise TypeError("an aiohttp whose queue takes other arguments")

    monkeypatch.setattr(intercept, "InterceptQueue", unfit)
    async with _serving() as (ours, ws):
        assert not ours.intercept(lambda text: True)
        await ws.send_str("every frame")
        assert await asyncio.wait_for(ours.receive(), 5) == "every frame"


async def test_send_nowait_on_a_full_socket_ends_the_connection_cleanly() -> None:
    """`send_nowait` is for a writable channel; on a peer that stopped reading it neither
    waits nor leaves a half-run send behind: the connection is aborted, ChannelClosed raised."""
    async with _serving() as (ours, ws):
        ours._ws._req.transport.pause_reading()  # type: ignore[attr-defined, union-attr]
        peer = WebSocketChannel(ws)
        chunk = "x" * 65536
        async with asyncio.timeout(10):
            while peer.writable:
                peer.send_nowait(chunk)
                await asyncio.sleep(0)
        with pytest.raises(ChannelClosed):
            for _ in range(64):  # past aiohttp's 64 KiB between drain checks
                peer.send_nowait(chunk)
        assert "would have waited" in peer.close_reason
        assert await asyncio.wait_for(peer.receive(), 5) is None  # the connection is gone
        ours._ws._req.transport.resume_reading()  # type: ignore[attr-defined, union-attr]
        while await asyncio.wait_for(ours.receive(), 5) is not None:
            pass  # what was written before the abort, then the server sees the end
