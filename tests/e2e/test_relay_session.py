"""relay-router around the conversation: action callback, signatures, bad messages, clip URLs."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.e2e.relay_harness import NUMBER, PUBLIC, TOKEN, relay_config, relay_rig
from voiceagent.audio import parse_wav
from voiceagent.errors import ClipNotFound
from voiceagent.protocols.signature import compute_signature
from voiceagent.session.call import CallSession
from voiceagent.session.latency import TurnTiming
from voiceagent.sim.relay_caller import Drop, Say, SendRaw
from voiceagent.store.clips import RedisClipStore
from voiceagent.web.keys import SERVICES

REDIS_URL = "redis://127.0.0.1:6379/0"
HANDOFF = {"type": "dial", "number": "+18005550199", "message": "Connecting you."}


class Sink:
    """A CallSink keeping what it is told (the sink seam, not a mock of our code)."""

    def __init__(self) -> None:
        self.ended: list[CallSession] = []
        self.turns: list[TurnTiming] = []

    def call_started(self, call: CallSession) -> None:
        return None

    def turn_finished(self, call: CallSession, turn: TurnTiming) -> None:
        self.turns.append(turn)

    def call_ended(self, call: CallSession) -> None:
        self.ended.append(call)


async def _action(
    base: str, query: str, form: dict[str, str], sign: bool = True
) -> tuple[int, str]:
    url = f"{PUBLIC}/voice/action?{query}"
    headers = {"X-Twilio-Signature": compute_signature(TOKEN, url, form)} if sign else {}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base}/voice/action?{query}", data=form, headers=headers) as resp,
    ):
        return resp.status, await resp.text()


def _form(status: str, **extra: str) -> dict[str, str]:
    return {"CallSid": "CA" + "3" * 32, "AccountSid": "AC" + "4" * 32, "To": NUMBER,
            "From": "+14155550100", "SessionStatus": status, "SessionId": "VX" + "5" * 32,
            "CallStatus": "in-progress", **extra}  # fmt: skip


async def test_action_ended_with_handoff_dials_the_configured_number() -> None:
    """SessionStatus=ended with HandoffData → the handoff message, then <Dial> the number."""
    async with relay_rig(relay_config(handoff=HANDOFF)) as rig:
        status, xml = await _action(rig.base_url, "mode=relay-router",
                                    _form("ended", HandoffData='{"reason":"human"}'))  # fmt: skip
        assert status == 200
        assert "<Say>Connecting you.</Say><Dial>+18005550199</Dial>" in xml


async def test_action_failed_reconnects_once_then_apologises() -> None:
    """failed → fresh ConversationRelay TwiML marked attempt=2; failed again → apology, hang up."""
    async with relay_rig() as rig:
        status, xml = await _action(rig.base_url, "mode=relay-router", _form("failed"))
        assert status == 200 and "<ConversationRelay " in xml
        assert "mode=relay-router&amp;attempt=2" in xml
        assert '<Parameter name="attempt" value="2" />' in xml
        _, xml = await _action(rig.base_url, "mode=relay-router&attempt=2", _form("failed"))
        assert "<Say>Sorry, a glitch.</Say><Hangup />" in xml


async def test_action_completed_is_empty_and_unsigned_action_is_refused() -> None:
    """completed → an empty <Response/>; an unsigned callback → 403."""
    async with relay_rig() as rig:
        status, xml = await _action(rig.base_url, "mode=relay-router", _form("completed"))
        assert status == 200 and xml.endswith("<Response />")
        status, _ = await _action(rig.base_url, "mode=relay-router", _form("completed"), sign=False)
        assert status == 403


async def test_unsigned_or_wrongly_signed_conversation_upgrade_is_refused() -> None:
    """The /conversation upgrade needs Twilio's signature over the public wss:// URL."""
    async with relay_rig() as rig, aiohttp.ClientSession() as http:
        url = rig.base_url.replace("http://", "ws://") + "/conversation"
        for headers in ({}, {"x-twilio-signature": compute_signature(TOKEN, url, {})}):
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await http.ws_connect(url, headers=headers)
            assert err.value.status == 403


async def test_bad_messages_are_counted_and_ignored() -> None:
    """Invalid JSON and unknown types are logged, counted, and the call carries on."""
    async with relay_rig() as rig:
        sink = rig.server.app[SERVICES].sink = Sink()
        record = await rig.call([SendRaw("not json"), SendRaw('{"type":"bogus"}'), Say("Hi.")])
        assert record.turns[-1].clips and all(c.valid for c in record.turns[-1].clips)
        assert sink.ended[0].counters.bad_frames == 2
        assert sink.ended[0].counters.turns == 1
        assert record.errors_sent == []  # and we never sent Twilio an invalid message


async def test_latency_of_each_turn_is_recorded() -> None:
    """Each turn reports prompt → first play, → first upstream audio and → clip fetched."""
    async with relay_rig() as rig:
        sink = rig.server.app[SERVICES].sink = Sink()
        await rig.call([Say("Hi.")])
        turn = next(t for t in sink.turns if t.kind == "turn")
        assert turn.response_ms is not None and turn.upstream_ttfb_ms is not None
        assert turn.fetch_ms is not None and turn.fetch_ms >= turn.response_ms


async def test_clip_head_404_and_expiry() -> None:
    """HEAD gives the WAV's type and length; unknown ids 404; clips expire after the TTL."""
    async with relay_rig(clip_ttl_seconds=0.3) as rig, aiohttp.ClientSession() as http:
        record = await rig.call([])
        url = record.clips[0].url.replace(PUBLIC, rig.base_url)
        async with http.head(url) as resp:
            assert resp.status == 200 and resp.content_type == "audio/wav"
            assert resp.content_length == 44 + record.clips[0].duration_ms * 8
        async with http.get(rig.base_url + "/audio/" + secrets.token_urlsafe(18)) as resp:
            assert resp.status == 404
        await asyncio.sleep(0.5)
        async with http.get(url) as resp:
            assert resp.status == 404


async def test_streamed_unknown_length_clips_when_enabled() -> None:
    """With CLIP_STREAM_UNKNOWN_LENGTH the clip is a streamed WAV that still parses fully."""
    async with relay_rig(clip_stream_unknown_length=True) as rig:
        record = await rig.call([Say("Hi.")])
        clips = record.turns[1].clips
        assert clips and all(c.valid for c in clips)
        assert all(c.sample_rate == 8000 for c in clips)


async def _redis_or_skip() -> aioredis.Redis:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, aioredis.ConnectionError) as exc:
        await client.aclose()
        pytest.skip(f"no Redis server answers at {REDIS_URL}: {exc}")
    return client


async def test_two_instances_sharing_redis_serve_each_others_clips() -> None:
    """A clip made on instance A is served by instance B (same bytes), as behind a balancer."""
    await (await _redis_or_skip()).aclose()
    async with relay_rig(redis_url=REDIS_URL) as a, relay_rig(redis_url=REDIS_URL) as b:
        record = await a.call([])
        async with aiohttp.ClientSession() as http:
            for clip in record.clips:
                path = clip.url.removeprefix(PUBLIC)
                async with http.get(a.base_url + path) as ra, http.get(b.base_url + path) as rb:
                    body_a, body_b = await ra.read(), await rb.read()
                assert rb.status == 200 and rb.content_type == "audio/wav" and body_a == body_b
                assert parse_wav(body_b).sample_rate == 8000


async def test_open_clip_on_another_instance_is_served_once_finished() -> None:
    """A fetch on B of a clip still open on A waits for it, then gets the finished body."""
    a_redis, b_redis = await _redis_or_skip(), aioredis.Redis.from_url(REDIS_URL)
    a, b = RedisClipStore(a_redis, 5.0), RedisClipStore(b_redis, 5.0)
    try:
        clip_id = await a.open("audio/wav")
        waiter: asyncio.Task[Any] = asyncio.create_task(b.get(clip_id, wait=5))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        await a.finish(clip_id, b"RIFF....WAVE")
        body = await waiter
        assert body.data == b"RIFF....WAVE" and body.content_type == "audio/wav"
        with pytest.raises(ClipNotFound):
            await b.get("nope", wait=0.1)
    finally:
        await a.close()
        await b.close()


async def test_failed_session_reconnects_once_and_keeps_the_conversation() -> None:
    """A session lost on Twilio's side reconnects (attempt=2) with the history intact."""
    async with relay_rig() as rig:
        script = [Say("Remember banana."), Drop(), Say("What was it?")]
        record = await rig.call(script)
        assert record.sessions == 2 and record.parameters["attempt"] == "2"
        assert record.session_status == "completed"
        requests = rig.router.requests
        assert len(requests) == 3  # greeting, turn 1, turn 2: no second greeting
        assert [m["content"] for m in requests[2].messages[-3:]] == [
            "Remember banana.",
            "You said: Remember banana. Is there anything else I can do? ",
            "What was it?",
        ]
