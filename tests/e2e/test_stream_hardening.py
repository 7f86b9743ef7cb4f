"""Hostile or broken peers on the phone sockets, through real signed WebSocket upgrades: a
replayed upgrade, a silent caller, a flood of malformed frames, a `setup` without a CallSid."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import orjson

from tests.conftest import StartRig
from tests.rig import PUBLIC, REALTIME_A, RELAY, TOKEN, Rig, webhook_form
from voiceagent.protocols.signature import compute_signature
from voiceagent.sim.webhooks import new_sid


async def _upgrade(rig: Rig, path: str) -> aiohttp.ClientWebSocketResponse:
    """A WebSocket upgrade signed exactly as Twilio signs it (over the fixed wss URL)."""
    wss = PUBLIC.replace("https://", "wss://") + path
    headers = {"X-Twilio-Signature": compute_signature(TOKEN, wss, {})}
    return await rig.http.ws_connect(rig.base_url.replace("http", "ws") + path, headers=headers)


def _start(call_sid: str, parameters: dict[str, str]) -> str:
    stream_sid = new_sid("MZ")
    info = {
        "accountSid": new_sid("AC"),
        "streamSid": stream_sid,
        "callSid": call_sid,
        "tracks": ["inbound"],
        "customParameters": parameters,
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    return orjson.dumps({"event": "start", "sequenceNumber": "1", "start": info,
                         "streamSid": stream_sid}).decode()  # fmt: skip


async def _closed(ws: aiohttp.ClientWebSocketResponse, within: float = 5.0) -> int | None:
    """Read until the server closes the socket; its close code."""
    async with asyncio.timeout(within):
        async for _ in ws:
            pass
    return ws.close_code


async def _answered(rig: Rig, to: str) -> tuple[str, dict[str, str]]:
    """Post /voice for a new call; its CallSid and the TwiML's <Parameter>s."""
    form = webhook_form(to)
    status, twiml = await rig.post_signed("/voice", form)
    assert status == 200
    return form["CallSid"], dict(re.findall(r'<Parameter name="(\w+)" value="([^"]*)"', twiml))


async def test_a_replayed_upgrade_opens_no_session_without_the_calls_token(
    start_rig: StartRig,
) -> None:
    """A captured upgrade signature replayed with CallSids /voice never answered (no token, a
    forged one, another call's) is closed as a policy violation; no Inworld session opens."""
    rig = await start_rig()
    real_sid, params = await _answered(rig, REALTIME_A)
    attempts: list[dict[str, Any]] = [
        {"number": REALTIME_A},
        {"number": REALTIME_A, "token": "forged"},
        {"number": REALTIME_A, "token": params["token"]},  # a token of another call
    ]
    for parameters in attempts:
        ws = await _upgrade(rig, "/media-stream")
        await ws.send_str(_start(new_sid("CA"), parameters))
        assert await _closed(ws) == aiohttp.WSCloseCode.POLICY_VIOLATION
    assert rig.realtime.sessions == [] and real_sid


async def test_a_silent_caller_is_ended_and_its_session_closed(start_rig: StartRig) -> None:
    """A caller that sends `start` and then nothing is ended after PHONE_IDLE_TIMEOUT, and its
    Inworld session is closed."""
    rig = await start_rig(phone_idle_timeout=0.5)
    call_sid, params = await _answered(rig, REALTIME_A)
    ws = await _upgrade(rig, "/media-stream")
    await ws.send_str(_start(call_sid, params))
    assert await _closed(ws, within=10) is not None
    call = await rig.ended(call_sid)
    assert call.end_reason is not None and "silent" in call.end_detail
    assert len(rig.realtime.sessions) == 1
    assert await rig.realtime.wait_no_open_sessions(within=5)


async def test_relay_malformed_frames_end_the_call_past_the_budget(start_rig: StartRig) -> None:
    """ConversationRelay frames that are not valid messages are counted (a few logged) and past
    the budget the call ends as a protocol error, instead of being ignored forever."""
    rig = await start_rig()
    call_sid, params = await _answered(rig, RELAY)
    ws = await _upgrade(rig, "/conversation")
    setup = {"type": "setup", "sessionId": new_sid("VX"), "callSid": call_sid,
             "to": RELAY, "customParameters": params}  # fmt: skip
    await ws.send_str(orjson.dumps(setup).decode())
    for _ in range(100):
        if ws.closed:
            break
        await ws.send_str('{"type": "nonsense"}')
    assert await _closed(ws) == aiohttp.WSCloseCode.PROTOCOL_ERROR
    call = await rig.ended(call_sid)
    assert call.end_reason is not None and call.end_reason.value == "protocol_error"
    assert call.counters.bad_frames == 51


async def test_setup_without_a_call_sid_is_refused(start_rig: StartRig) -> None:
    """A ConversationRelay `setup` with no CallSid is closed; it shares nothing with others."""
    rig = await start_rig()
    _, params = await _answered(rig, RELAY)
    ws = await _upgrade(rig, "/conversation")
    setup = {"type": "setup", "sessionId": new_sid("VX"), "to": RELAY, "customParameters": params}
    await ws.send_str(orjson.dumps(setup).decode())
    assert await _closed(ws) == aiohttp.WSCloseCode.POLICY_VIOLATION
    assert rig.router.requests == []
