"""relay-router around the conversation: action callback, signatures, bad messages, clip URLs."""

from __future__ import annotations

import asyncio
import os
import secrets
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.rig import PUBLIC, RELAY, TOKEN, Rig, StartRig, rig_config
from voiceagent.audio import parse_wav
from voiceagent.errors import ClipNotFound
from voiceagent.protocols.signature import compute_signature
from voiceagent.sim.script import Drop, Listen, Say, SendRaw
from voiceagent.store.live.clips import RedisClipStore

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
HANDOFF = {"type": "dial", "number": "+18005550199", "message": "Connecting you."}


def _form(status: str, **extra: str) -> dict[str, str]:
    return {"CallSid": "CA" + "3" * 32, "AccountSid": "AC" + "4" * 32, "To": RELAY,
            "From": "+14155550100", "SessionStatus": status, "SessionId": "VX" + "5" * 32,
            "CallStatus": "in-progress", **extra}  # fmt: skip


async def test_action_ended_with_handoff_dials_the_configured_number(start_rig: StartRig) -> None:
    """SessionStatus=ended with HandoffData → the handoff message, then <Dial> the number."""
    rig = await start_rig(config=rig_config(relay={"handoff": HANDOFF}))
    form = _form("ended", HandoffData='{"reason":"human"}')
    status, xml = await rig.post_signed("/voice/action?mode=relay-router", form)
    assert status == 200
    assert "<Say>Connecting you.</Say><Dial>+18005550199</Dial>" in xml


async def test_action_failed_reconnects_once_then_apologises(rig: Rig) -> None:
    """failed → fresh ConversationRelay TwiML marked attempt=2; failed again → apology, hang up."""
    status, xml = await rig.post_signed("/voice/action?mode=relay-router", _form("failed"))
    assert status == 200 and "<ConversationRelay " in xml
    assert "mode=relay-router&amp;attempt=2" in xml
    assert '<Parameter name="attempt" value="2" />' in xml
    _, xml = await rig.post_signed("/voice/action?mode=relay-router&attempt=2", _form("failed"))
    assert "<Say>Sorry, a glitch.</Say><Hangup />" in xml


async def test_action_completed_is_empty_and_unsigned_action_is_refused(rig: Rig) -> None:
    """completed → an empty <Response/>; an unsigned callback → 403."""
    path = "/voice/action?mode=relay-router"
    status, xml = await rig.post_signed(path, _form("completed"))
    assert status == 200 and xml.endswith("<Response />")
    status, _ = await rig.post_signed(path, _form("completed"), sign=False)
    assert status == 403


async def test_unsigned_or_wrongly_signed_conversation_upgrade_is_refused(rig: Rig) -> None:
    """The /conversation upgrade needs Twilio's signature over the public wss:// URL."""
    url = rig.base_url.replace("http://", "ws://") + "/conversation"
    for headers in ({}, {"x-twilio-signature": compute_signature(TOKEN, url, {})}):
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await rig.http.ws_connect(url, headers=headers)
        assert err.value.status == 403


async def test_bad_messages_are_counted_and_ignored(rig: Rig) -> None:
    """Invalid JSON and unknown types are logged, counted, and the call carries on."""
    script = [Listen(), SendRaw("not json"), SendRaw('{"type":"bogus"}'), Say("Hi."), Listen()]
    record = await rig.place_call(RELAY, script)
    assert record.turns[-1].clips and all(c.valid for c in record.turns[-1].clips)
    call = await rig.ended(record.call_sid)
    assert call.counters.bad_frames == 2
    assert call.counters.turns == 1
    assert record.errors_sent == []  # and we never sent Twilio an invalid message


async def test_latency_of_each_turn_is_recorded(rig: Rig) -> None:
    """Each turn reports prompt → first play, → first upstream audio and → clip fetched."""
    record = await rig.place_call(RELAY, [Listen(), Say("Hi."), Listen()])
    await rig.ended(record.call_sid)
    turn = next(t for t in rig.calls.turns_of(record.call_sid) if t.kind == "turn")
    assert turn.response_ms is not None and turn.upstream_ttfb_ms is not None
    assert turn.fetch_ms is not None and turn.fetch_ms >= turn.response_ms


async def test_clip_head_404_and_expiry(start_rig: StartRig) -> None:
    """HEAD gives the WAV's type and length; unknown ids 404; clips expire after the TTL."""
    rig = await start_rig(clip_ttl_seconds=0.3)
    http = rig.http
    record = await rig.place_call(RELAY, [Listen()])
    url = record.clips[0].url.replace(PUBLIC, rig.base_url)
    async with http.head(url) as resp:
        assert resp.status == 200 and resp.content_type == "audio/wav"
        assert resp.content_length == 44 + record.clips[0].duration_ms * 8
    async with http.get(rig.base_url + "/audio/" + secrets.token_urlsafe(18)) as resp:
        assert resp.status == 404
    await asyncio.sleep(0.5)
    async with http.get(url) as resp:
        assert resp.status == 404


async def test_streamed_unknown_length_clips_when_enabled(start_rig: StartRig) -> None:
    """With CLIP_STREAM_UNKNOWN_LENGTH the clip is a streamed WAV that still parses fully."""
    rig = await start_rig(clip_stream_unknown_length=True)
    record = await rig.place_call(RELAY, [Listen(), Say("Hi."), Listen()])
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


async def test_two_instances_sharing_redis_serve_each_others_clips(start_rig: StartRig) -> None:
    """A clip made on instance A is served by instance B (same bytes), as behind a balancer."""
    await (await _redis_or_skip()).aclose()
    a, b = await start_rig(redis_url=REDIS_URL), await start_rig(redis_url=REDIS_URL)
    record = await a.place_call(RELAY, [Listen()])
    for clip in record.clips:
        path = clip.url.removeprefix(PUBLIC)
        async with a.http.get(a.base_url + path) as ra, a.http.get(b.base_url + path) as rb:
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


async def test_failed_session_reconnects_once_and_keeps_the_conversation(rig: Rig) -> None:
    """A session lost on Twilio's side reconnects (attempt=2) with the history intact."""
    script = [Listen(), Say("Remember banana."), Listen(), Drop(), Say("What was it?"), Listen()]
    record = await rig.place_call(RELAY, script)
    assert record.sessions == 2 and record.parameters["attempt"] == "2"
    assert record.session_status == "completed"
    requests = rig.router.requests
    assert len(requests) == 3  # greeting, turn 1, turn 2: no second greeting
    assert [m["content"] for m in requests[2].messages[-3:]] == [
        "Remember banana.",
        "You said: Remember banana. Is there anything else I can do? ",
        "What was it?",
    ]
