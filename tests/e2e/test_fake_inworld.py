"""The fake Inworld Realtime server behaves as the reference says (docs/protocols.md, Inworld
§1)."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import orjson
import pytest

from voiceagent.audio import silence_ulaw, speech_like_ulaw
from voiceagent.sim.fake_inworld_realtime import FakeInworldRealtime
from voiceagent.sim.fake_options import FakeRealtimeOptions

KEY = "fake-inworld-key"
AUTH = {"Authorization": f"Basic {KEY}"}
ULAW_UPDATE = {
    "type": "session.update",
    "session": {
        "audio": {"input": {"format": {"type": "audio/pcmu"}}, "output": {"format": "g711_ulaw"}}
    },
}


async def _recv_until(ws: aiohttp.ClientWebSocketResponse, kind: str) -> list[dict[str, Any]]:
    seen = []
    while True:
        msg = await ws.receive(timeout=5)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        event = orjson.loads(msg.data)
        seen.append(event)
        if event.get("type") == kind:
            return seen


def _append(audio: bytes) -> str:
    return orjson.dumps(
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode()}
    ).decode()


@pytest.mark.parametrize(
    ("headers", "query", "status"),
    [
        ({}, "?key=k&protocol=realtime", 401),
        ({"Authorization": "Basic wrong"}, "?key=k&protocol=realtime", 401),
        (AUTH, "?protocol=realtime", 400),
        (AUTH, "?key=k", 400),
    ],
)
async def test_auth_and_query_are_checked_before_the_upgrade(
    headers: dict[str, str], query: str, status: int
) -> None:
    """Without the right Basic key, or without key/protocol, the upgrade is refused."""
    async with FakeInworldRealtime() as fake, aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await http.ws_connect(fake.url + query, headers=headers)
    assert err.value.status == status and fake.sessions == []


async def test_update_before_created_and_one_updated_per_update() -> None:
    """session.update sent at once is accepted; each update gets exactly one session.updated;
    an unknown transcription model gets invalid_value and is not applied."""
    async with FakeInworldRealtime() as fake, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(fake.url + "?key=k1&protocol=realtime", headers=AUTH)
        await ws.send_str(orjson.dumps(ULAW_UPDATE).decode())
        first = await _recv_until(ws, "session.updated")
        assert first[0]["type"] == "session.created"
        bad = {
            "type": "session.update",
            "session": {
                "instructions": "changed",
                "audio": {"input": {"transcription": {"model": "nope/stt"}}},
            },
        }
        await ws.send_str(orjson.dumps(bad).decode())
        [error] = await _recv_until(ws, "error")
        await ws.send_str(orjson.dumps({"type": "session.update", "session": {}}).decode())
        [updated] = await _recv_until(ws, "session.updated")
        await ws.close()
    assert [e["type"] for e in first].count("session.updated") == 1
    assert error["error"]["code"] == "invalid_value"
    assert error["error"]["param"] == "session.audio.input.transcription.model"
    assert "instructions" not in updated["session"]


async def test_vad_turn_transcript_and_streamed_response() -> None:
    """Speech then silence: speech_started/stopped, a transcript, then a streamed response
    ending in response.done; audio sent before session.update is interpreted afterwards."""
    options = FakeRealtimeOptions(
        transcripts=("what time is it",),
        answers=("Noon.",),
        vad_hangover_ms=200,
        first_delta_delay_s=0,
        chunk_gap_s=0,
    )
    async with FakeInworldRealtime(options) as fake, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(fake.url + "?key=k2&protocol=realtime", headers=AUTH)
        await ws.send_str(_append(silence_ulaw(200)))  # before the format is known
        await ws.send_str(orjson.dumps(ULAW_UPDATE).decode())
        for audio in (speech_like_ulaw(600), silence_ulaw(400)):
            await ws.send_str(_append(audio))
        events = await _recv_until(ws, "response.done")
        await ws.close()
    kinds = [e["type"] for e in events]
    started = next(e for e in events if e["type"] == "input_audio_buffer.speech_started")
    assert started["audio_start_ms"] == 200
    transcript = next(e for e in events if e["type"].endswith("transcription.completed"))
    assert transcript["transcript"] == "what time is it"
    assert kinds.index("input_audio_buffer.speech_stopped") < kinds.index("response.created")
    assert (
        "response.output_audio.delta" in kinds and events[-1]["response"]["status"] == "completed"
    )
    text = "".join(
        e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta"
    )
    assert text == "Noon."


async def test_cancel_without_a_response_is_response_cancel_not_active() -> None:
    """response.cancel with nothing generating answers error response_cancel_not_active."""
    async with FakeInworldRealtime() as fake, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(fake.url + "?key=k3&protocol=realtime", headers=AUTH)
        await ws.send_str('{"type":"response.cancel"}')
        events = await _recv_until(ws, "error")
        await ws.close()
    assert events[-1]["error"]["code"] == "response_cancel_not_active"


async def test_session_cap_sends_an_untyped_exhausted_frame() -> None:
    """Over the concurrent-session cap the fake sends {"errorType":...} with no type, closes."""
    async with (
        FakeInworldRealtime(FakeRealtimeOptions(max_sessions=0)) as fake,
        aiohttp.ClientSession() as http,
    ):
        ws = await http.ws_connect(fake.url + "?key=k4&protocol=realtime", headers=AUTH)
        msg = await ws.receive(timeout=5)
        closing = await ws.receive(timeout=5)
    assert orjson.loads(msg.data) == {"errorType": "SESSION_RESOURCES_EXHAUSTED"}
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert fake.open_sessions == 0
