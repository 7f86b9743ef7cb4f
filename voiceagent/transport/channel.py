"""The channel seam: a message pipe a mode reads and writes, with or without a socket.

Handlers wrap an aiohttp WebSocket in `WebSocketChannel`; tests drive modes through
`memory_pair()` with no sockets at all.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import aiohttp
from aiohttp import web


class Channel(Protocol):
    """A bidirectional message pipe. `receive` returns None once the peer is gone."""

    async def send(self, text: str) -> None: ...

    async def receive(self) -> str | bytes | None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...

    @property
    def closed(self) -> bool: ...

    @property
    def close_reason(self) -> str: ...


class ChannelClosed(Exception):
    """Sending on a channel whose peer has gone."""


class WebSocketChannel:
    """A Channel over an aiohttp server- or client-side WebSocket."""

    __slots__ = ("_reason", "_ws")

    def __init__(self, ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._reason = ""

    async def send(self, text: str) -> None:
        if self._ws.closed:
            raise ChannelClosed(self._reason or "closed")
        try:
            await self._ws.send_str(text)
        except (ConnectionError, RuntimeError) as exc:
            raise ChannelClosed(str(exc)) from exc

    async def receive(self) -> str | bytes | None:
        msg = await self._ws.receive()
        if msg.type is aiohttp.WSMsgType.TEXT:
            return str(msg.data)
        if msg.type is aiohttp.WSMsgType.BINARY:
            return bytes(msg.data)
        if msg.type is aiohttp.WSMsgType.ERROR:
            self._reason = f"error: {msg.data}"
        elif not self._reason:
            code = self._ws.close_code
            self._reason = f"closed ({code})" if code is not None else "closed"
        return None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if not self._reason:
            self._reason = reason or "closed by us"
        if not self._ws.closed:
            await self._ws.close(code=code, message=reason.encode()[:120])

    @property
    def closed(self) -> bool:
        return self._ws.closed

    @property
    def close_reason(self) -> str:
        return self._reason


class MemoryChannel:
    """One end of an in-memory channel pair (bounded queues, like a socket's buffers)."""

    def __init__(
        self, inbox: asyncio.Queue[str | bytes | None], peer: MemoryChannel | None
    ) -> None:
        self._inbox = inbox
        self._peer = peer
        self._closed = False
        self._reason = ""

    async def send(self, text: str) -> None:
        if self._closed or self._peer is None or self._peer._closed:
            raise ChannelClosed("closed")
        await self._peer._inbox.put(text)

    async def send_bytes(self, data: bytes) -> None:
        """Test helper: deliver a binary frame."""
        assert self._peer is not None
        await self._peer._inbox.put(data)

    async def receive(self) -> str | bytes | None:
        if self._closed and self._inbox.empty():
            return None
        item = await self._inbox.get()
        if item is None:
            self._closed = True
            self._reason = self._reason or "closed by peer"
        return item

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        self._reason = reason or "closed by us"
        self._inbox.put_nowait(None)
        if self._peer is not None and not self._peer._closed:
            self._peer._inbox.put_nowait(None)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_reason(self) -> str:
        return self._reason


def memory_pair(maxsize: int = 1024) -> tuple[MemoryChannel, MemoryChannel]:
    """Two connected in-memory channels."""
    a = MemoryChannel(asyncio.Queue(maxsize), None)
    b = MemoryChannel(asyncio.Queue(maxsize), a)
    a._peer = b
    return a, b
