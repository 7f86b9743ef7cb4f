"""The channel seam: a message pipe a mode reads and writes, with or without a socket.

Handlers wrap an aiohttp WebSocket in `WebSocketChannel`; tests drive modes through
`memory_pair()` with no sockets at all.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
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

    last_received: float  # monotonic time of the last frame received
    sending_since: float | None  # monotonic time a blocked send started

    def abort(self, reason: str) -> None:
        """End the connection at once (a silent or stuck peer)."""
        ...


_TEXT = aiohttp.WSMsgType.TEXT


class ChannelClosed(Exception):
    """Sending on a channel whose peer has gone."""


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
            transport.close()

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
        self.last_received = time.monotonic()
        self.sending_since: float | None = None

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


@dataclass(eq=False, slots=True)
class _Watched:
    channel: Channel
    idle_timeout: float | None
    send_timeout: float
    what: str
    on_expired: Callable[[str], None] | None
    expired: asyncio.Future[None]

    def expiry(self, now: float) -> str | None:
        """Why the channel must be aborted now (None: it may go on)."""
        since = self.channel.sending_since
        if since is not None and now - since > self.send_timeout:
            return f"{self.what} not reading for {self.send_timeout:g}s"
        idle = self.idle_timeout
        if idle is not None and now - self.channel.last_received > idle:
            return f"{self.what} silent for {idle:g}s"
        return None


class _Ticker:
    """Checks every watched channel of one step once per step: one timer for all calls."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.watched: set[_Watched] = set()
        self.task: asyncio.Task[None] | None = None

    def add(self, watched: _Watched) -> None:
        self.watched.add(watched)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            await self._tick()
        finally:  # no task (and through it, no loop) is kept once nothing is watched
            self.task = None

    async def _tick(self) -> None:
        while self.watched:
            await asyncio.sleep(self.step)
            now = time.monotonic()
            for watched in list(self.watched):
                reason = watched.expiry(now)
                if reason is None or watched.expired.done():
                    continue
                self.watched.discard(watched)
                try:
                    if watched.on_expired is not None:
                        watched.on_expired(reason)
                    watched.channel.abort(reason)
                except Exception as exc:  # that call's failure, raised in its own watch()
                    watched.expired.set_exception(exc)
                else:
                    watched.expired.set_result(None)


_TICKERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, _Ticker]] = (
    weakref.WeakKeyDictionary()
)


async def watch(
    channel: Channel,
    idle_timeout: float | None,
    send_timeout: float,
    what: str,
    on_expired: Callable[[str], None] | None = None,
) -> None:
    """Abort `channel` when its peer sent nothing for `idle_timeout` seconds (None: never) or
    a send has been blocked for `send_timeout` seconds; `on_expired(reason)` runs first (the
    call records why: aborting a server socket may cancel its handler). Returns after
    aborting; cancel it when the call ends. No timer per frame, nor per call: one ticker per
    event loop (per check interval) looks at every watched channel, once a second."""
    step = min(1.0, send_timeout / 2, idle_timeout / 2 if idle_timeout else 1.0)
    loop = asyncio.get_running_loop()
    tickers = _TICKERS.setdefault(loop, {})
    ticker = tickers.get(step) or tickers.setdefault(step, _Ticker(step))
    watched = _Watched(channel, idle_timeout, send_timeout, what, on_expired, loop.create_future())
    ticker.add(watched)
    try:
        await watched.expired
    finally:
        ticker.watched.discard(watched)
