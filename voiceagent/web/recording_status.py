"""`POST /recording-status`: Twilio's recording status callback (signed like every webhook).

A completed recording's URL and duration go onto the call's record and to the business
(`webhooks/recordings.py`); other statuses (`in-progress`, `absent`) are only logged."""

from __future__ import annotations

from aiohttp import web

from voiceagent.logging import clip, get_logger
from voiceagent.web.keys import SERVICES
from voiceagent.web.twilio_http import form_call_sid, signed_form
from voiceagent.webhooks.recordings import recording_from_form

log = get_logger("voiceagent.web")


async def recording_status(request: web.Request) -> web.Response:
    form = await signed_form(request)
    call_sid = form_call_sid(form)
    services = request.app[SERVICES]
    recording = recording_from_form(form)
    if recording is None:
        log.info("recording_status", call_sid=call_sid,
                 status=clip(form.get("RecordingStatus", ""), 20))  # fmt: skip
        return web.Response(status=204)
    if services.recordings is not None:
        await services.recordings.completed(call_sid, recording)
    return web.Response(status=204)
