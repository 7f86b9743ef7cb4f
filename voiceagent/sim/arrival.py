"""When a simulated peer's process read each frame, not when its task got to it.

A benchmark's callers share one event loop: a frame that arrived while the loop was busy with
other calls waits for its task's turn, and a stamp taken there adds the instrument's own queueing
to what it measures. `StampingClientWebSocketResponse`, as a `ClientSession`'s
`ws_response_class`, stamps every text frame in the socket's read callback, as the frame is
parsed; `arrival(ws, seen)` hands a reader the stamp of the text frame it just received (`seen`
where the socket keeps none: another response class, or aiohttp internals it cannot hook).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType

from voiceagent.transport.intercept import InterceptingClientWebSocketResponse, InterceptQueue

_TEXT = WSMsgType.TEXT


class StampingQueue(InterceptQueue):
    """aiohttp's frame queue, noting `time.monotonic()` as each text frame is parsed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arrivals: deque[float] = deque()

    def feed_data(self, data: Any, size: int) -> None:
        if data[0] is _TEXT:
            self.arrivals.append(time.monotonic())
        super().feed_data(data, size)


class StampingClientWebSocketResponse(InterceptingClientWebSocketResponse):
    """A client WebSocket whose text frames carry the time they were read."""

    queue_class = StampingQueue


def arrival(ws: ClientWebSocketResponse, seen: float) -> float:
    """The read time of the text frame `ws` just returned (`seen` if it keeps none)."""
    queue = getattr(ws, "_reader", None)
    arrivals = getattr(queue, "arrivals", None)
    return arrivals.popleft() if arrivals else seen
