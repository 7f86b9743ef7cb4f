"""The channel seam: a message pipe a mode reads and writes, with or without a socket.

Handlers wrap an aiohttp WebSocket in `WebSocketChannel`; tests drive modes through
`memory_pair()` with no sockets at all.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

import aiohttp
from aiohttp import web

from voiceagent.transport.intercept import FrameHook, InterceptQueue


class Channel(Protocol):
    """A bidirectional message pipe. `receive` returns None once the peer is gone."""

    async def send(self, text: str) -> None: ...

    async def receive(self) -> str | bytes | None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...

    @property
    def closed(self) -> bool: ...

    @property
    def close_reason(self) -> str: ...

    last_received: float  # monotonic time of the last frame received
    sending_since: float | None  # monotonic time a blocked send started

    def abort(self, reason: str) -> None:
        """End the connection at once (a silent or stuck peer)."""
        ...

    def intercept(self, hook: FrameHook | None) -> bool:
        """Offer each text frame that arrives while `receive` waits to `hook` first, in the
        read callback (no task switch); a frame it consumes is not returned by `receive`.
        None removes the hook. False: this channel cannot (every frame comes to `receive`)."""
        ...

    @property
    def writable(self) -> bool:
        """Whether `send_nowait` can send now (open, nothing waiting to be written)."""
        ...

    def send_nowait(self, text: str) -> None:
        """Send without waiting; only when `writable`. ChannelClosed once closed."""
        ...


_TEXT = aiohttp.WSMsgType.TEXT
_OP_TEXT = int(aiohttp.WSMsgType.TEXT)


class ChannelClosed(Exception):
    """Sending on a channel whose peer has gone."""


class WebSocketChannel:
    """A Channel over an aiohttp server- or client-side WebSocket.

    It notes when it last received a frame and since when a send has been blocked (a peer
    that stops reading), so a `watch` task can end a silent or stuck peer without a timer
    per frame."""

    __slots__ = ("_hook", "_reason", "_waiting", "_ws", "last_received", "sending_since")

    def __init__(self, ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._reason = ""
        self._hook: FrameHook | None = None
        self._waiting = False  # `receive` waits: nothing queued, nobody mid-frame
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

    def send_nowait(self, text: str) -> None:
        # An uncompressed frame is written straight to the transport by aiohttp's writer (no
        # coroutine: this runs in read callbacks, for most of a call's frames). A send that
        # would have had to wait for the peer to read (the transport's buffer over its
        # high-water mark: called while not writable) ends the connection instead.
        writer = self._ws._writer
        write = getattr(writer, "_write_websocket_frame", None)
        if write is None or writer.compress or writer._closing:  # type: ignore[union-attr]
            self._send_via_coroutine(text)
            return
        try:
            write(text.encode(), _OP_TEXT, 0)
        except (ConnectionError, RuntimeError) as exc:
            raise ChannelClosed(str(exc)) from exc
        if writer.protocol._paused:  # type: ignore[union-attr]
            self.abort("a send that must not wait would have waited")
            raise ChannelClosed(self._reason)

    def _send_via_coroutine(self, text: str) -> None:
        """`send_nowait` through aiohttp's public `send_str` (a compressed socket, or an
        aiohttp whose writer differs): its coroutine ends at its first step unless it would
        wait, and a send that would wait is not left half-run: the connection is aborted."""
        sending = self._ws.send_str(text)
        try:
            waited_on = sending.send(None)
        except StopIteration:
            return
        except (ConnectionError, RuntimeError) as exc:
            raise ChannelClosed(str(exc)) from exc
        sending.close()
        if isinstance(waited_on, asyncio.Future):  # the drain it waited on fails with the
            waited_on.add_done_callback(_retrieved)  # connection: nobody else will look
        self.abort("a send that must not wait would have waited")
        raise ChannelClosed(self._reason)

    @property
    def writable(self) -> bool:
        writer = self._ws._writer
        transport = writer.transport if writer is not None else None
        return (
            not self._ws.closed and transport is not None
            and not transport.is_closing() and transport.get_write_buffer_size() == 0
        )  # fmt: skip

    def intercept(self, hook: FrameHook | None) -> bool:
        queue = getattr(self._ws, "_reader", None)
        if not isinstance(queue, InterceptQueue):
            return False
        self._hook = hook
        queue.hook = None if hook is None else self._offer
        return True

    def _offer(self, text: str) -> bool:
        hook = self._hook
        if self._waiting and hook is not None and hook(text):
            self.last_received = time.monotonic()
            return True
        return False

    async def receive(self) -> str | bytes | None:
        self._waiting = True
        try:
            msg = await self._ws.receive()
        finally:
            self._waiting = False
        self.last_received = time.monotonic()
        if msg.type is _TEXT:
            return msg.data  # type: ignore[no-any-return]
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

    def abort(self, reason: str) -> None:
        """End a peer that is silent or not reading: no closing handshake to wait for."""
        if not self._reason:
            self._reason = reason
        transport = self._ws._writer.transport if self._ws._writer is not None else None
        if transport is not None:
            transport.abort()  # close() would wait to flush what a stuck peer never reads

    @property
    def closed(self) -> bool:
        return self._ws.closed

    @property
    def close_reason(self) -> str:
        return self._reason


def _retrieved(future: asyncio.Future[object]) -> None:
    if not future.cancelled():
        future.exception()


class MemoryChannel:
    """One end of an in-memory channel pair (bounded queues, like a socket's buffers)."""

    def __init__(
        self, inbox: asyncio.Queue[str | bytes | None], peer: MemoryChannel | None
    ) -> None:
        self._inbox = inbox
        self._peer = peer
        self._closed = False
        self._reason = ""
        self._hook: FrameHook | None = None
        self._waiting = False
        self.last_received = time.monotonic()
        self.sending_since: float | None = None

    async def send(self, text: str) -> None:
        peer = self._open_peer()
        if not peer._offer(text):
            await peer._inbox.put(text)

    def send_nowait(self, text: str) -> None:
        peer = self._open_peer()
        if not peer._offer(text):
            peer._inbox.put_nowait(text)

    @property
    def writable(self) -> bool:
        peer = self._peer
        return not (self._closed or peer is None or peer._closed or peer._inbox.full())

    def intercept(self, hook: FrameHook | None) -> bool:
        self._hook = hook
        return True

    def _open_peer(self) -> MemoryChannel:
        peer = self._peer
        if self._closed or peer is None or peer._closed:
            raise ChannelClosed("closed")
        return peer

    def _offer(self, text: str) -> bool:
        """Like a socket's read callback: the hook sees a frame only while `receive` waits."""
        hook = self._hook
        if self._waiting and hook is not None and self._inbox.empty() and hook(text):
            self.last_received = time.monotonic()
            return True
        return False

    async def send_bytes(self, data: bytes) -> None:
        """Test helper: deliver a binary frame."""
        assert self._peer is not None
        await self._peer._inbox.put(data)

    async def receive(self) -> str | bytes | None:
        if self._closed and self._inbox.empty():
            return None
        self._waiting = True
        try:
            item = await self._inbox.get()
        finally:
            self._waiting = False
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
        if self._peer is not None and not self._peer._closed:
            self._peer._inbox.put_nowait(None)

    def abort(self, reason: str) -> None:
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
    a = MemoryChannel(asyncio.Queue(maxsize), None)
    b = MemoryChannel(asyncio.Queue(maxsize), a)
    a._peer = b
    return a, b
