"""Frames taken as they are parsed: WebSockets (server and client) whose text frames a hook may
consume.

A mode's pump task waking for each of the caller's 50 frames a second is most of what caller
audio costs: at 100 calls, handling media frames in the socket's read callback instead (no
future, no task switch) took a fifth off a bare bridge's CPU (benchmarks/realtime_load.py).
`InterceptingWebSocketResponse` is aiohttp's `WebSocketResponse` with a frame queue that first
offers each text frame to a hook (`WebSocketChannel.intercept`); a frame the hook declines is
queued as usual. The hook is offered a frame only when nothing is queued ahead of it, so frames
are still handled in order.

`InterceptingClientWebSocketResponse` does the same for a client WebSocket (the Inworld
session), as the `ws_response_class` of the app's `ClientSession`: agent audio goes out to the
caller in the read callback of Inworld's socket.

aiohttp has no public API for this: the queue and its parser are set up the way aiohttp 3.14's
`_post_start` and `ClientSession._ws_connect` do. Where that does not fit (another aiohttp), the
socket falls back to aiohttp's own queue, logs it once, and every frame takes the pump (correct,
only slower).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

from aiohttp import ClientWebSocketResponse, WSMsgType, web
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from aiohttp.helpers import DEFAULT_CHUNK_SIZE

from voiceagent.logging import get_logger

log = get_logger("voiceagent.transport")

FrameHook = Callable[[str], bool]
"""Offered a text frame; True when it consumed it (it must not raise)."""

_TEXT = WSMsgType.TEXT
_fell_back = False


class InterceptQueue(WebSocketDataQueue):
    """aiohttp's frame queue, offering each text frame to `hook` when nothing is queued."""

    hook: FrameHook | None = None

    def feed_data(self, data: Any, size: int) -> None:
        hook = self.hook
        if hook is None or self._buffer or data[0] is not _TEXT or not hook(data[1]):
            super().feed_data(data, size)


class InterceptingWebSocketResponse(web.WebSocketResponse):
    """A server WebSocket whose frames `WebSocketChannel.intercept` can take synchronously."""

    def _post_start(self, request: web.BaseRequest, protocol: str | None, writer: Any) -> None:
        try:
            queue = InterceptQueue(request._protocol, DEFAULT_CHUNK_SIZE, loop=request._loop)
            parser = WebSocketReader(
                queue, self._max_msg_size, compress=bool(self._compress),
                decode_text=self._decode_text,
            )  # fmt: skip
            data_received = None if self._heartbeat is None else self._on_data_received
        except (AttributeError, TypeError) as exc:  # aiohttp's internals are not 3.14's
            _fall_back(exc)
            super()._post_start(request, protocol, writer)
            return
        self._ws_protocol = protocol
        self._writer = writer
        self._reset_heartbeat()
        self._reader = queue
        self._parser = parser
        request.protocol.set_parser(parser, data_received_cb=data_received)
        request.protocol.keep_alive(False)


class InterceptingClientWebSocketResponse(ClientWebSocketResponse):
    """A client WebSocket whose frames `WebSocketChannel.intercept` can take synchronously.

    `ClientSession._ws_connect` hands it aiohttp's queue and then sets `_parser` to a parser
    feeding that queue; this response reads from an `InterceptQueue` instead and, when the
    parser is set, puts one feeding it in its place (with this class's `max_msg_size`: connect
    with it), so the frames that came with the handshake's answer are parsed into it too. The
    connection's end reaches the queue through the parser (`feed_eof`), as for aiohttp's own."""

    max_msg_size: ClassVar[int] = 16 * 1024 * 1024
    queue_class: ClassVar[type[InterceptQueue] | None] = None  # None: InterceptQueue

    def __init__(
        self, reader: Any, writer: Any, protocol: str | None, response: Any, timeout: Any,
        autoclose: bool, autoping: bool, loop: asyncio.AbstractEventLoop, **kwargs: Any,
    ) -> None:  # fmt: skip
        self._own_parser: Any = None
        self._aiohttps_queue = reader
        try:
            queue_class = self.queue_class or InterceptQueue
            reader = queue_class(reader._protocol, DEFAULT_CHUNK_SIZE, loop=loop)
        except (AttributeError, TypeError) as exc:  # aiohttp's internals are not 3.14's
            _fall_back(exc)
        super().__init__(
            reader, writer, protocol, response, timeout, autoclose, autoping, loop, **kwargs
        )

    @property
    def _parser(self) -> Any:
        return self._own_parser

    @_parser.setter
    def _parser(self, parser: Any) -> None:
        queue = self._reader
        if parser is not None and self._own_parser is None and queue is not self._aiohttps_queue:
            try:
                parser = WebSocketReader(
                    queue, self.max_msg_size, compress=bool(self._compress), decode_text=True
                )
            except (AttributeError, TypeError) as exc:  # aiohttp's parser stays, on its queue
                _fall_back(exc)
                self._reader = self._aiohttps_queue
        self._own_parser = parser


def _fall_back(exc: Exception) -> None:
    global _fell_back
    if not _fell_back:
        _fell_back = True
        log.warning("frame_intercept_unavailable", error=str(exc)[:200])
