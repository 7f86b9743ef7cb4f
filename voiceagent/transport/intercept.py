"""Frames taken as they are parsed: a server WebSocket whose text frames a hook may consume.

A mode's pump task waking for each of the caller's 50 frames a second is most of what caller
audio costs: at 100 calls, handling media frames in the socket's read callback instead (no
future, no task switch) took a fifth off a bare bridge's CPU (benchmarks/realtime_load.py).
`InterceptingWebSocketResponse` is aiohttp's `WebSocketResponse` with a frame queue that first
offers each text frame to a hook (`WebSocketChannel.intercept`); a frame the hook declines is
queued as usual. The hook is offered a frame only when nothing is queued ahead of it, so frames
are still handled in order.

aiohttp has no public API for this: the queue and its parser are set up the way aiohttp 3.14's
`_post_start` does. Where that does not fit (another aiohttp), the response falls back to
aiohttp's own queue, logs it once, and every frame takes the pump (correct, only slower).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web
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
        global _fell_back
        try:
            queue = InterceptQueue(request._protocol, DEFAULT_CHUNK_SIZE, loop=request._loop)
            parser = WebSocketReader(
                queue, self._max_msg_size, compress=bool(self._compress),
                decode_text=self._decode_text,
            )  # fmt: skip
            data_received = None if self._heartbeat is None else self._on_data_received
        except (AttributeError, TypeError) as exc:  # aiohttp's internals are not 3.14's
            if not _fell_back:
                _fell_back = True
                log.warning("frame_intercept_unavailable", error=str(exc)[:200])
            super()._post_start(request, protocol, writer)
            return
        self._ws_protocol = protocol
        self._writer = writer
        self._reset_heartbeat()
        self._reader = queue
        self._parser = parser
        request.protocol.set_parser(parser, data_received_cb=data_received)
        request.protocol.keep_alive(False)
