"""The WebSocket endpoints Twilio connects to (`/media-stream`, `/conversation`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from aiohttp.web import WebSocketResponse

from voiceagent.logging import get_logger
from voiceagent.modes.base import Mode
from voiceagent.modes.lifecycle import serve_call
from voiceagent.transport.channel import WebSocketChannel
from voiceagent.web.keys import SERVICES, VERIFIER
from voiceagent.web.signature_log import rejection_fields

log = get_logger("voiceagent.web")


def phone_socket(mode: Mode) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A handler that checks the upgrade's signature, accepts it and runs `mode` on it."""

    async def handler(request: web.Request) -> web.StreamResponse:
        services = request.app[SERVICES]
        signature = request.headers.get("X-Twilio-Signature")
        skip = services.settings.insecure_skip_signature
        if not skip and not request.app[VERIFIER].verify_upgrade(request.path, signature):
            checked = request.app[VERIFIER].wss_url(request.path)
            log.warning(
                "signature_rejected", path=request.path, **rejection_fields(request, checked)
            )
            raise web.HTTPForbidden(text="invalid X-Twilio-Signature")
        if services.calls.draining:
            raise web.HTTPServiceUnavailable(text="draining")
        settings = services.settings
        # Heartbeats find a dead peer on a quiet socket (ConversationRelay); Media Streams sends
        # 50 frames/s, so its silence watch (PHONE_IDLE_TIMEOUT) finds one sooner, without a
        # heartbeat reset per frame on the hot path.
        heartbeat = None if mode.phone_sends_continuously else settings.heartbeat_seconds
        ws = WebSocketResponse(
            max_msg_size=settings.max_frame_bytes, autoping=True, heartbeat=heartbeat
        )
        await ws.prepare(request)
        task = asyncio.current_task()
        assert task is not None
        services.calls.add(task, mode.name)
        try:
            await serve_call(WebSocketChannel(ws), services, mode)
        finally:
            services.calls.discard(task)
            structlog.contextvars.clear_contextvars()
            if not ws.closed:
                await ws.close()
        return ws

    return handler
