"""`GET|HEAD /audio/{clip_id}`: the clips ConversationRelay fetches for `play`.

A fetch of a clip whose segment is still being synthesized is held open until the clip is
complete, then answered with the whole WAV and its Content-Length, on whichever instance the
fetch lands (with Redis, see store/clips.py); only an unknown or expired id gets 404. Only with
`CLIP_STREAM_UNKNOWN_LENGTH` (not shown to work with real Twilio) is an open clip streamed as
a WAV with no length instead.
"""

from __future__ import annotations

import re

from aiohttp import web

from voiceagent.errors import ClipNotFound
from voiceagent.logging import get_logger
from voiceagent.web.keys import SERVICES

log = get_logger("voiceagent.web")
CLIP_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
"""What `ClipStore.open` hands out (URL-safe tokens); anything else is unknown at once."""
NO_STORE = {"Cache-Control": "no-store"}
"""A clip is one caller's audio: no cache (a CDN, a proxy) may keep it."""


async def clip(request: web.Request) -> web.StreamResponse:
    """Serve one clip; 404 for an unknown or expired id."""
    services = request.app[SERVICES]
    store = services.clips
    clip_id = request.match_info["clip_id"].removesuffix(".wav")
    if CLIP_ID.fullmatch(clip_id) is None:
        raise web.HTTPNotFound(text="unknown or expired clip", headers=NO_STORE)
    if request.method == "GET" and services.settings.clip_stream_unknown_length:
        parts = store.stream(clip_id)
        if parts is not None:
            response = web.StreamResponse(headers={"Content-Type": "audio/wav", **NO_STORE})
            await response.prepare(request)
            async for part in parts:
                await response.write(part)
            await response.write_eof()
            store.fetched(clip_id)
            return response
    try:
        body = await store.get(clip_id)
    except ClipNotFound:
        log.info("clip_not_found", clip_id=clip_id[:6])
        raise web.HTTPNotFound(text="unknown or expired clip", headers=NO_STORE) from None
    response = web.Response(body=body.data, content_type=body.content_type, headers=NO_STORE)
    if request.method == "GET":
        await response.prepare(request)
        await response.write_eof()
        store.fetched(clip_id)
    return response
