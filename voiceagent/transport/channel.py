"""The channel seam: a message pipe a mode reads and writes, with or without a socket.

Handlers wrap an aiohttp WebSocket in `WebSocketChannel` (aiohttp's documented WebSocket API
only: `receive`, `send_str`, `close`); tests drive modes through `memory_pair()` with no
sockets at all.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

import aiohttp
from aiohttp import web

from voiceagent.errors import ChannelClosed

__all__ = ["Channel", "ChannelClosed", "MemoryChannel", "WebSocketChannel", "memory_pair"]

ABORT_TIMEOUT_S = 0.5
"""How long `abort` lets a closing handshake take before the connection is dropped."""


class Channel(Protocol):
    """A bidirectional message pipe. `receive` returns None once the peer is gone."""

    async def send(self, text: str) -> None: ...

    async def receive(self) -> str | bytes | None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...

    async def abort(self, reason: str) -> None:
        """End the connection at once (a silent or stuck peer): a close that waits for
        nothing the peer would have to do; `receive` then returns None."""
        ...

    @property
    def closed(self) -> bool: ...

    @property
    def close_reason(self) -> str: ...

    last_received: float  # monotonic time of the last frame received
    sending_since: float | None  # monotonic time a blocked send started


_TEXT = aiohttp.WSMsgType.TEXT
_BINARY = aiohttp.WSMsgType.BINARY
_ERROR = aiohttp.WSMsgType.ERROR


class WebSocketChannel:
    """A Channel over an aiohttp server- or client-side WebSocket.

    It notes when it last received a frame and since when a send has been blocked (a peer
    that stops reading), so a `watch` task can end a silent or stuck peer without a timer
    per frame."""

    __slots__ = ("_reason", "_ws", "last_received", "sending_since")

    def __init__(self, ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._reason = ""
        self.last_received = time.monotonic()
        self.sending_since: float | None = None

    async def send(self, text: str) -> None:
        if self._ws.closed:
            raise ChannelClosed(self._reason or "closed")
        self.sending_since = time.monotonic()
        try:
            await self._ws.send_str(text)
        except (ConnectionError, RuntimeError) as exc:
            raise ChannelClosed(str(exc)) from exc
        finally:
            self.sending_since = None

    async def receive(self) -> str | bytes | None:
        msg = await self._ws.receive()
        self.last_received = time.monotonic()
        kind = msg.type
        if kind is _TEXT:
            return msg.data  # type: ignore[no-any-return]
        if kind is _BINARY:
            return bytes(msg.data)
        if kind is _ERROR:
            self._reason = self._reason or f"error: {msg.data}"
        elif not self._reason:
            code = self._ws.close_code
            self._reason = f"closed ({code})" if code is not None else "closed"
        return None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if not self._reason:
            self._reason = reason or "closed by us"
        if not self._ws.closed:
            await self._ws.close(code=code, message=reason.encode()[:120])

    async def abort(self, reason: str) -> None:
        """Close with a short deadline: aiohttp drops the connection when a close is
        cancelled, so a peer that neither reads nor answers holds nothing for long."""
        if not self._reason:
            self._reason = reason
        if self._ws.closed:
            return
        try:
            async with asyncio.timeout(ABORT_TIMEOUT_S):
                await self._ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"aborted")
        except (TimeoutError, OSError, RuntimeError):
            pass  # the cancelled close dropped the connection

    @property
    def closed(self) -> bool:
        return self._ws.closed

    @property
    def close_reason(self) -> str:
        return self._reason


class MemoryChannel:
    """One end of an in-memory channel pair (bounded queues, like a socket's buffers)."""

    def __init__(self, maxsize: int) -> None:
        self._inbox: asyncio.Queue[str | bytes | None] = asyncio.Queue(maxsize)
        self._peer: MemoryChannel | None = None
        self._closed = False
        self._reason = ""
        self.last_received = time.monotonic()
        self.sending_since: float | None = None

    def connect(self, peer: MemoryChannel) -> None:
        """Join this end to `peer` (both ways)."""
        self._peer, peer._peer = peer, self

    async def send(self, text: str) -> None:
        peer = self._peer
        if self._closed or peer is None or peer._closed:
            raise ChannelClosed(self._reason or "closed")
        self.sending_since = time.monotonic()
        try:
            await peer._inbox.put(text)
        finally:
            self.sending_since = None

    async def send_bytes(self, data: bytes) -> None:
        """Test helper: deliver a binary frame."""
        assert self._peer is not None
        await self._peer._inbox.put(data)

    @property
    def pending(self) -> int:
        """Frames received but not yet read (tests: what a mode has sent to this end)."""
        return self._inbox.qsize()

    async def receive(self) -> str | bytes | None:
        if self._closed and self._inbox.empty():
            return None
        item = await self._inbox.get()
        self.last_received = time.monotonic()
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
        peer = self._peer
        if peer is not None and not peer._closed:
            peer._inbox.put_nowait(None)

    async def abort(self, reason: str) -> None:
        self._reason = self._reason or reason
        self._closed = True
        self._inbox.put_nowait(None)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_reason(self) -> str:
        return self._reason


def memory_pair(maxsize: int = 1024) -> tuple[MemoryChannel, MemoryChannel]:
    """Two connected in-memory channels."""
    a, b = MemoryChannel(maxsize), MemoryChannel(maxsize)
    a.connect(b)
    return a, b
