"""The WebSocket endpoints Twilio connects to (`/media-stream`, `/conversation`).

A socket is not a call until its `start` / `setup` carries a valid stream token (the upgrade
signature is the same for every call of a number and never expires, so it proves little):

- before that it is *pending*: at most MAX_PENDING_STREAMS per instance (past it the upgrade
  gets 503 and no socket), each for at most STREAM_START_TIMEOUT seconds, and a refused one is
  closed at once (lifecycle.refuse);
- once the token is valid it is an active call, counted against MAX_CONCURRENT_CALLS, so
  forged or silent sockets can never take the slots `/voice` answers for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from aiohttp.web import WebSocketResponse

from voiceagent.logging import get_logger
from voiceagent.modes.base import Mode
from voiceagent.modes.lifecycle import serve_call
from voiceagent.runtime import Services
from voiceagent.transport.channel import WebSocketChannel
from voiceagent.web.keys import SERVICES, VERIFIER

log = get_logger("voiceagent.web")


def pending_streams(services: Services) -> int:
    """How many phone sockets await their start frame (not yet calls)."""
    return services.calls.pending


def phone_socket(mode: Mode) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A handler that checks the upgrade's signature, accepts it and runs `mode` on it."""

    async def handler(request: web.Request) -> web.StreamResponse:
        services = request.app[SERVICES]
        signature = request.headers.get("X-Twilio-Signature")
        skip = services.settings.insecure_skip_signature
        if not skip and not request.app[VERIFIER].verify_upgrade(request.path, signature):
            log.warning("signature_rejected", path=request.path, has_signature=bool(signature))
            raise web.HTTPForbidden(text="invalid X-Twilio-Signature")
        if services.calls.draining:
            raise web.HTTPServiceUnavailable(text="draining")
        settings = services.settings
        pending = services.calls
        if pending.pending >= settings.max_pending_streams:
            log.warning("stream_refused", why="too many pending streams", pending=pending.pending)
            raise web.HTTPServiceUnavailable(text="too many streams awaiting their start")
        # Heartbeats find a dead peer on a quiet socket (ConversationRelay); Media Streams sends
        # 50 frames/s, so its silence watch (PHONE_IDLE_TIMEOUT) finds one sooner, without a
        # heartbeat reset per frame on the hot path.
        heartbeat = None if mode.phone_sends_continuously else settings.heartbeat_seconds
        ws = WebSocketResponse(
            max_msg_size=settings.max_frame_bytes, autoping=True, heartbeat=heartbeat
        )
        task = asyncio.current_task()
        assert task is not None
        pending.pending += 1
        admitted = False

        def admit() -> None:
            nonlocal admitted
            admitted = True
            pending.pending -= 1
            services.calls.add(task, mode.name)

        try:
            await ws.prepare(request)
            await serve_call(WebSocketChannel(ws), services, mode, admit)
        finally:
            if admitted:
                services.calls.discard(task)
            else:
                pending.pending -= 1
            structlog.contextvars.clear_contextvars()
            if not ws.closed:
                await ws.close()
        return ws

    return handler
