"""Frames taken as they arrive (`Channel.intercept`) over a real aiohttp WebSocket, on either
end: served by `InterceptingWebSocketResponse`, or connected by a ClientSession whose
`ws_response_class` is `InterceptingClientWebSocketResponse`. A hook sees a frame only while
`receive` waits with nothing queued, what it declines comes to `receive`, and the order of what
is left is kept."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from voiceagent.sim.arrival import StampingClientWebSocketResponse, arrival
from voiceagent.transport import intercept
from voiceagent.transport.channel import ChannelClosed, WebSocketChannel
from voiceagent.transport.intercept import (
    InterceptingClientWebSocketResponse,
    InterceptingWebSocketResponse,
)

CLIENT = InterceptingClientWebSocketResponse


class _Server:
    """One WebSocket served by InterceptingWebSocketResponse; its channel for the test."""

    def __init__(self, first: str | None) -> None:
        self.channel: asyncio.Future[WebSocketChannel] = asyncio.get_running_loop().create_future()
        self.done = asyncio.Event()
        self.first = first

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = InterceptingWebSocketResponse()
        await ws.prepare(request)
        if self.first is not None:  # right behind the handshake's answer
            await ws.send_str(self.first)
        self.channel.set_result(WebSocketChannel(ws))
        await self.done.wait()
        return ws


@asynccontextmanager
async def _serving(
    client_class: type[aiohttp.ClientWebSocketResponse] = aiohttp.ClientWebSocketResponse,
    first: str | None = None,
    compress: int = 0,
) -> AsyncIterator[tuple[WebSocketChannel, aiohttp.ClientWebSocketResponse]]:
    """(server channel, client socket) over a real WebSocket on 127.0.0.1; the server sends
    `first` as soon as it has answered the handshake."""
    server = _Server(first)
    app = web.Application()
    app.router.add_get("/ws", server.handler)
    async with (
        TestServer(app, host="127.0.0.1") as test_server,
        aiohttp.ClientSession(ws_response_class=client_class) as http,
    ):
        ws = await http.ws_connect(
            test_server.make_url("/ws"), max_msg_size=CLIENT.max_msg_size, compress=compress
        )
        try:
            yield await server.channel, ws
        finally:
            server.done.set()
            await ws.close()


@pytest.fixture(params=["server", "client"])
async def socket_pair(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[WebSocketChannel, WebSocketChannel]]:
    """(intercepting channel, its peer's channel) over a real WebSocket on 127.0.0.1: the
    intercepting end is the server, or a client of the intercepting class."""
    if request.param == "server":
        async with _serving() as (ours, ws):
            yield ours, WebSocketChannel(ws)
    else:
        async with _serving(CLIENT) as (server, ws):
            yield WebSocketChannel(ws), server


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


async def test_send_nowait_on_a_compressed_socket_sends_through_aiohttp() -> None:
    """With permessage-deflate negotiated, `send_nowait` leaves the frame to aiohttp's
    `send_str` (which compresses it) instead of writing it straight to the transport; both
    ends still exchange the text, both ways."""
    async with _serving(compress=15) as (ours, ws):
        peer = WebSocketChannel(ws)
        assert ours._ws._writer.compress and peer._ws._writer.compress  # type: ignore[union-attr]
        ours.send_nowait("to the client " * 20)
        peer.send_nowait("to the server " * 20)
        assert await asyncio.wait_for(peer.receive(), 5) == "to the client " * 20
        assert await asyncio.wait_for(ours.receive(), 5) == "to the server " * 20
        for end in (ours, peer):  # aiohttp made its compressor: the frames went compressed
            assert end._ws._writer._compressobj is not None  # type: ignore[union-attr]


async def test_a_plain_aiohttp_client_cannot_intercept() -> None:
    async with _serving() as (_, ws):
        assert not WebSocketChannel(ws).intercept(lambda text: True)  # every frame: receive()


async def test_frames_behind_the_handshake_reach_the_intercepting_client() -> None:
    """A frame that arrives with the handshake's answer is parsed into the client's own queue
    (aiohttp parses it as it sets the parser up); frames after it are offered to the hook."""
    async with _serving(CLIENT, first="session.created") as (server, ws):
        client = WebSocketChannel(ws)
        taken: list[str] = []
        assert client.intercept(lambda text: not taken.append(text))
        assert await asyncio.wait_for(client.receive(), 5) == "session.created"
        receiving = asyncio.create_task(client.receive())
        await asyncio.sleep(0)
        await server.send("delta")
        closing = asyncio.create_task(server.close())
        assert await asyncio.wait_for(receiving, 5) is None  # the close ends receive()
        await asyncio.wait_for(closing, 5)
    assert taken == ["delta"]


async def test_intercepting_client_sees_a_lost_connection() -> None:
    """The connection's end reaches the client's own queue: a dropped server ends receive()."""
    async with _serving(CLIENT) as (server, ws):
        client = WebSocketChannel(ws)
        assert client.intercept(lambda text: False)
        receiving = asyncio.create_task(client.receive())
        await server.send("kept")
        assert await asyncio.wait_for(receiving, 5) == "kept"
        server.abort("dropped")
        assert await asyncio.wait_for(client.receive(), 5) is None
        assert client.close_reason == "closed (1006)"


async def test_a_stamping_client_notes_when_each_text_frame_was_read() -> None:
    """The simulated callers' socket (`sim.arrival`): each text frame carries the time it was
    parsed, in order, however late the reading task gets to it; binary frames carry none. A
    plain aiohttp client keeps no stamps: `arrival` gives the time the task saw the frame."""
    async with _serving(StampingClientWebSocketResponse) as (server, ws):
        before = time.monotonic()
        await server.send("one")
        await server._ws.send_bytes(b"binary")  # type: ignore[union-attr]
        await server.send("two")
        await asyncio.sleep(0.2)  # read and parsed meanwhile; nobody receives
        busy_until = time.monotonic()
        stamps = []
        for expected in ("one", b"binary", "two"):
            msg = await asyncio.wait_for(ws.receive(), 5)
            assert msg.data == expected
            if msg.type is aiohttp.WSMsgType.TEXT:
                stamps.append(arrival(ws, time.monotonic()))
        assert before <= stamps[0] <= stamps[1] < busy_until
        assert not ws._reader.arrivals  # type: ignore[attr-defined]
    async with _serving() as (server, ws):
        await server.send("plain")
        assert (await asyncio.wait_for(ws.receive(), 5)).data == "plain"
        assert arrival(ws, 12.5) == 12.5


async def test_an_aiohttp_that_does_not_fit_falls_back_to_its_own_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where the intercepting queue cannot be built, the socket works as aiohttp's own and
    `intercept` says so: every frame comes to `receive`."""

    def unfit(*args: object, **kwargs: object) -> None:
        raise TypeError("an aiohttp whose queue takes other arguments")

    monkeypatch.setattr(intercept, "InterceptQueue", unfit)
    async with _serving(CLIENT) as (ours, ws):
        client = WebSocketChannel(ws)
        for channel, peer in ((ours, client), (client, ours)):
            assert not channel.intercept(lambda text: True)
            await peer.send("every frame")
            assert await asyncio.wait_for(channel.receive(), 5) == "every frame"


async def test_a_client_parser_that_does_not_fit_leaves_aiohttps_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where the intercepting client cannot build its parser, aiohttp's parser and queue
    stay: frames, the one behind the handshake included, come to `receive`."""

    def unfit(*args: object, **kwargs: object) -> None:
        raise TypeError("an aiohttp whose parser takes other arguments")

    monkeypatch.setattr(intercept, "WebSocketReader", unfit)
    async with _serving(CLIENT, first="first") as (server, ws):
        client = WebSocketChannel(ws)
        assert not client.intercept(lambda text: True)
        await server.send("second")
        assert [await asyncio.wait_for(client.receive(), 5) for _ in range(2)] == [
            "first",
            "second",
        ]


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
