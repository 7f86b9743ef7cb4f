"""A bare aiohttp bridge: the yardstick `realtime_load.py --pairs` measures voiceagent against.

It moves the same frames as realtime-passthrough (caller audio in 40 ms appends, agent audio
back as `media` frames, the greeting on `session.updated`) with none of voiceagent's logic:
no signatures, plans, state machine, marks, records, metrics or logs. What voiceagent costs
above it on the same machine, in the same hour, is what its own code adds; this shared VM's
absolute figures move by a fifth from one hour to the next.

Run by `realtime_load.py` with the server's environment (PORT, PUBLIC_URL,
INWORLD_REALTIME_URL, INWORLD_API_KEY); not part of voiceagent.
"""

from __future__ import annotations

import asyncio
import binascii
import os
import sys

import aiohttp
import orjson
import uvloop
from aiohttp import web

PUBLIC = os.environ.get("PUBLIC_URL", "https://bench.example.test")
REALTIME = os.environ.get("INWORLD_REALTIME_URL", "")
KEY = os.environ.get("INWORLD_API_KEY", "")
SESSION = {
    "type": "session.update",
    "session": {
        "type": "realtime",
        "output_modalities": ["audio"],
        "audio": {
            "input": {"format": {"type": "audio/pcmu"}, "turn_detection": {"type": "semantic_vad"}},
            "output": {"format": {"type": "audio/pcmu"}},
        },
    },
}
GREETING = (
    '{"type":"conversation.item.create","item":{"type":"message","role":"user",'
    '"content":[{"type":"input_text","text":"Greet the caller."}]}}',
    '{"type":"response.create"}',
)
APPEND_BYTES = 320  # 40 ms of µ-law
HTTP = web.AppKey("http", aiohttp.ClientSession)


async def voice(request: web.Request) -> web.Response:
    form = await request.post()
    stream = PUBLIC.replace("https://", "wss://") + "/media-stream"
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        f'<Connect action="{PUBLIC}/voice/action"><Stream url="{stream}">'
        f'<Parameter name="number" value="{form.get("To", "")}"/></Stream></Connect></Response>'
    )
    return web.Response(text=xml, content_type="text/xml")


async def empty(request: web.Request) -> web.Response:
    return web.Response(text="<Response/>", content_type="text/xml")


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "active_calls": 0})


async def media_stream(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    call_sid = stream_sid = ""
    async for msg in ws:
        event = orjson.loads(msg.data)
        if event.get("event") == "start":
            call_sid, stream_sid = event["start"]["callSid"], event["streamSid"]
            # which instance carried the call, for multi_instance.py (voiceagent logs the same)
            print(f'{{"event":"stream_started","call_sid":"{call_sid}"}}', file=sys.stderr)
            break
    if not call_sid:
        return ws
    http = request.app[HTTP]
    url = f"{REALTIME}?key={call_sid}&protocol=realtime"
    upstream = await http.ws_connect(url, headers={"Authorization": f"Basic {KEY}"})
    await upstream.send_str(orjson.dumps(SESSION).decode())
    prefix = '{"event":"media","streamSid":"' + stream_sid + '","media":{"payload":"'

    async def agent_to_caller() -> None:
        async for msg in upstream:
            event = orjson.loads(msg.data)
            kind = event.get("type")
            if kind == "response.output_audio.delta":
                await ws.send_str(prefix + event["delta"] + '"}}')
            elif kind == "session.updated":
                for frame in GREETING:
                    await upstream.send_str(frame)

    task = asyncio.create_task(agent_to_caller())
    audio = bytearray()
    async for msg in ws:
        event = orjson.loads(msg.data)
        if event.get("event") == "media":
            audio += binascii.a2b_base64(event["media"]["payload"])
            if len(audio) >= APPEND_BYTES:
                await upstream.send_str(_append(audio))
                audio.clear()
        elif event.get("event") == "stop":
            break
    if audio:
        await upstream.send_str(_append(audio))
    task.cancel()
    await upstream.close()
    await ws.close()
    return ws


def _append(audio: bytearray) -> str:
    encoded = binascii.b2a_base64(audio, newline=False).decode()
    return '{"type":"input_audio_buffer.append","audio":"' + encoded + '"}'


async def main() -> None:
    app = web.Application()
    app.router.add_post("/voice", voice)
    app.router.add_post("/voice/action", empty)
    app.router.add_get("/media-stream", media_stream)
    app.router.add_get("/healthz", health)
    async with aiohttp.ClientSession() as http:
        app[HTTP] = http
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", int(os.environ["PORT"])).start()
        await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(main())
