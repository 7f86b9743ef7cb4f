"""Read deadlines on the server itself (not only behind a proxy): a slow client cannot hold a
connection by trickling its request.

- Headers: aiohttp closes a connection that has not delivered a complete request head within
  its `keepalive_timeout` of opening (or of its previous response); `runner_options` sets it
  to HTTP_HEADER_TIMEOUT (aiohttp's default is an hour).
- Body: `read_body_within` reads a request's body, at most the app's `client_max_size`
  (413 past it), before the handler runs; one not complete within HTTP_BODY_TIMEOUT gets 408
  and the connection is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from voiceagent.logging import get_logger
from voiceagent.settings import Settings

log = get_logger("voiceagent.web")
LINGER_S = 1.0
"""How long the unread rest of a refused body is read and thrown away before the connection
closes (so the client sees the answer; aiohttp's default is 10 s)."""


def runner_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for the app's `web.AppRunner`."""
    return {"keepalive_timeout": settings.http_header_timeout, "lingering_time": LINGER_S}


def read_body_within(timeout_s: float) -> Middleware:
    """A middleware that reads each request body within `timeout_s` (408 otherwise)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.body_exists:
            try:
                async with asyncio.timeout(timeout_s):
                    await request.read()  # kept by aiohttp: post() and read() reuse it
            except TimeoutError:
                log.warning("request_body_timeout", path=request.path, seconds=timeout_s)
                response = web.Response(status=408, text="request body not received in time")
                response.force_close()  # the rest of the body is never read: end the connection
                return response
        return await handler(request)

    return middleware
