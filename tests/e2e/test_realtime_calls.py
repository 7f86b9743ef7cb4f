"""Whole realtime-passthrough calls through the real app, the fake Inworld Realtime server and
the simulated Twilio, over real sockets."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from tests.rig import APOLOGY, BAD_STT, PUBLIC, REALTIME_A, REALTIME_B, TOKEN, Rig, StartRig, until
from tests.rig import realtime_options as options
from voiceagent.protocols.signature import compute_signature
from voiceagent.session.call import EndReason
from voiceagent.sim.script import Drop, HangUp, Listen, Pause, PressKey, Say, SendRaw, Step

SAID_APOLOGY = f"<Say>{APOLOGY}</Say><Hangup />"


def turns(n: int) -> list[Step]:
    steps: list[Step] = [Listen()]
    for i in range(n):
        steps += [Say(ms=700, seed=i + 1), Listen()]
    return [*steps, HangUp()]


async def test_greeting_is_heard_and_session_configured_for_ulaw(rig: Rig) -> None:
    """The agent greets first and the one session.update asks for µ-law both ways."""
    rec = await rig.place_call(REALTIME_A, [Listen(), HangUp()])
    session = rig.realtime.session(rec.call_sid)
    assert rec.webhook_status == 200 and rec.parameters["number"] == REALTIME_A
    assert "?" not in rec.socket_url and rec.parameters["mode"] == "realtime-passthrough"
    assert rec.heard_ms >= 500 and rec.greeting_latency_ms is not None
    [update] = session.of_type("session.update")
    audio = update["session"]["audio"]
    assert audio["input"]["format"] == "g711_ulaw" and audio["output"]["format"] == "g711_ulaw"
    td = audio["input"]["turn_detection"]
    assert td["create_response"] is True and td["interrupt_response"] is True
    assert session.responses[0].text == "Hello from A." and session.responses[0].trigger != "vad"
    assert [e["type"] for e in session.events[1:3]] == [
        "conversation.item.create",
        "response.create",
    ]


async def test_three_turns_are_answered_and_kept_in_history(rig: Rig) -> None:
    """Three caller turns get three answers; the history holds transcripts and heard answers."""
    rec = await rig.place_call(REALTIME_A, turns(3))
    call = await rig.ended(rec.call_sid)
    session = rig.realtime.session(rec.call_sid)
    assert [r.status for r in session.responses] == ["completed"] * 4
    assert len(rec.responses_heard()) == 4 and rec.warnings == []
    assert call.counters.turns == 3 and call.end_reason is EndReason.CALLER_HANGUP
    texts = [(t.role, t.text) for t in call.history.turns]
    for i in (1, 2, 3):
        assert ("user", f"utterance {i}") in texts
    assert ("assistant", "Sure, I can help with that.") in texts
    assert len(rec.turn_latencies_ms()) == 3


async def test_barge_in_clears_cancels_and_truncates_at_heard_audio(start_rig: StartRig) -> None:
    """Speech over the agent: clear, cancel, truncate ≤ played, and no stale audio afterwards."""
    rig = await start_rig(realtime=options(response_audio_ms=4000, chunk_gap_s=0.08))
    script = [Listen("playing", 400), Say(ms=600), Listen(), HangUp()]
    rec = await rig.place_call(REALTIME_A, script)
    call = await rig.ended(rec.call_sid)
    session = rig.realtime.session(rec.call_sid)
    greeting = session.responses[0]
    assert len(rec.clears) == 1 and call.counters.barge_ins == 1
    assert session.of_type("response.cancel")
    [truncate] = session.of_type("conversation.item.truncate")
    assert truncate["item_id"] == greeting.item_id
    assert 0 < truncate["audio_end_ms"] <= rec.heard_ms_by_response[greeting.id] + 1
    assert rec.heard_ms_by_response[greeting.id] < 4000
    cleared_at = rec.clears[0]
    later = [o for o in rec.outbound if o.at > cleared_at and o.event == "mark"]
    assert later and all(not str(o.detail).startswith(greeting.id + ":") for o in later)
    assert session.responses[1].status == "completed"  # the call went on after the benign error
    assert call.end_reason is EndReason.CALLER_HANGUP


async def test_dtmf_is_counted_and_logged_without_its_digit(rig: Rig) -> None:
    """A key press is counted on the call and logged, never with its digit (PINs)."""
    with capture_logs() as logs:
        rec = await rig.place_call(REALTIME_A, [Pause(200), PressKey("7"), Pause(200), HangUp()])
        call = await rig.ended(rec.call_sid)
    assert call.counters.dtmf == 1
    [pressed] = [e for e in logs if e["event"] == "dtmf_received"]
    assert "digit" not in pressed and not any("7" in str(v) for v in pressed.values())
    [ended] = [e for e in logs if e["event"] == "call_ended"]
    assert ended["dtmf"] == 1 and ended["reason"] == "caller_hangup"


@pytest.mark.parametrize("ending", [HangUp(), Drop()])
async def test_caller_leaving_closes_the_upstream_session(rig: Rig, ending: Step) -> None:
    """A hang-up (stop) or a dropped connection closes the Inworld session."""
    rec = await rig.place_call(REALTIME_A, [Listen(), Say(ms=300), ending])
    assert await rig.realtime.wait_no_open_sessions(within=10)
    call = await rig.ended(rec.call_sid)
    expected = EndReason.CALLER_HANGUP if isinstance(ending, HangUp) else (
        EndReason.CALLER_DISCONNECTED
    )  # fmt: skip
    assert call.end_reason is expected and rec.closed_by == "caller"


async def test_bad_signatures_are_refused_on_webhook_and_upgrade(rig: Rig) -> None:
    """A wrongly signed webhook gets 403; a wrongly signed upgrade is refused, no session opens."""
    rec = await rig.place_call(REALTIME_A, turns(0), bad_signature=True)
    assert rec.webhook_status == 403 and rec.socket_url == ""
    url = rig.target.local(PUBLIC.replace("https", "wss") + "/media-stream")
    for signature in ("", compute_signature(TOKEN, PUBLIC + "/media-stream", {})):
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await rig.http.ws_connect(url, headers={"x-twilio-signature": signature})
        assert err.value.status == 403
    assert rig.realtime.sessions == []


async def test_malformed_frames_are_ignored_without_touching_another_call(rig: Rig) -> None:
    """Bad JSON, binary, unknown events and bad base64 are counted; the call and a concurrent
    call go on normally."""
    bad_media = (
        '{"event":"media","sequenceNumber":"9","media":{"track":"inbound","chunk":"9",'
        '"timestamp":"180","payload":"@@not-base64@@"},"streamSid":"MZx"}'
    )
    junk = [Pause(100), SendRaw("not json"), SendRaw(b"\x00\x01binary"),
            SendRaw('{"event":"no-such-event"}'), SendRaw(bad_media), SendRaw("[1,2]"),
            Listen(), Say(ms=600), Listen(), HangUp()]  # fmt: skip
    bad, good = await asyncio.gather(
        rig.place_call(REALTIME_A, junk), rig.place_call(REALTIME_B, turns(1))
    )
    bad_call, good_call = await rig.ended(bad.call_sid), await rig.ended(good.call_sid)
    assert bad_call.counters.bad_frames == 5
    assert bad_call.end_reason is EndReason.CALLER_HANGUP and len(bad.responses_heard()) == 2
    assert good_call.counters.bad_frames == 0 and len(good.responses_heard()) == 2


async def test_oversized_frame_closes_only_that_call(start_rig: StartRig) -> None:
    """A frame over MAX_FRAME_BYTES closes that stream; a concurrent call is unaffected."""
    rig = await start_rig(max_frame_bytes=4096)
    huge = [Pause(100), SendRaw("x" * 5000), Pause(400), HangUp()]
    bad, good = await asyncio.gather(
        rig.place_call(REALTIME_A, huge), rig.place_call(REALTIME_B, turns(1))
    )
    bad_call, good_call = await rig.ended(bad.call_sid), await rig.ended(good.call_sid)
    assert await rig.realtime.wait_no_open_sessions(within=10)
    assert bad.closed_by == "server" and bad_call.end_reason is EndReason.CALLER_DISCONNECTED
    assert good_call.end_reason is EndReason.CALLER_HANGUP and len(good.responses_heard()) == 2


async def test_media_before_start_is_ignored_then_the_stream_is_closed(rig: Rig) -> None:
    """A stream that never sends `start` is closed by the server, and no upstream session opens."""
    with capture_logs() as logs:
        rec = await rig.place_call(REALTIME_A, [Pause(1300)], skip_start=True)
    assert rec.closed_by == "server" and rig.realtime.sessions == []
    events = [e["event"] for e in logs]
    assert "phone_bad_frame" in events and "stream_closed_before_start" in events


@pytest.mark.parametrize(
    ("change", "failure"),
    [
        ({"api_key": "another-key"}, "auth"),
        ({"refuse_status": 429}, "rate_limited"),
        ({"refuse_status": 503}, "unavailable"),
        ({"max_sessions": 0}, "capacity"),
    ],
)
async def test_upstream_refusal_ends_the_call_with_an_apology(
    start_rig: StartRig, change: dict[str, Any], failure: str
) -> None:
    """Inworld refusing the session ends the stream; the action callback apologises."""
    rig = await start_rig(realtime=options(**change))
    with capture_logs() as logs:
        rec = await rig.place_call(REALTIME_A, turns(1))
        call = await rig.ended(rec.call_sid)
    assert call.end_reason is EndReason.UPSTREAM_FAILED and call.upstream_failure == failure
    assert rec.closed_by == "server" and rec.action_status == 200
    assert rec.action_twiml is not None and SAID_APOLOGY in rec.action_twiml
    assert any(e["event"] == "upstream_failed" and e["failure"] == failure for e in logs)


async def test_upstream_drop_mid_call_ends_the_call_with_an_apology(start_rig: StartRig) -> None:
    """Inworld closing mid-call and refusing new sessions: once the reconnect attempts are
    spent the stream closes and the number's apology is spoken."""
    rig = await start_rig(realtime=options(drop_after_responses=1, refuse_after_sessions=1))
    rec = await rig.place_call(REALTIME_B, turns(2))
    call = await rig.ended(rec.call_sid)
    assert call.end_reason is EndReason.UPSTREAM_FAILED and call.upstream_failure == "dropped"
    assert rec.action_twiml is not None and "<Say>B is sorry.</Say><Hangup />" in rec.action_twiml


async def test_rejected_session_update_is_fatal(rig: Rig) -> None:
    """Inworld rejecting the session.update (unknown transcription model) ends the call with
    an apology instead of running a session in the wrong audio format."""
    rec = await rig.place_call(BAD_STT, turns(1))
    call = await rig.ended(rec.call_sid)
    session = rig.realtime.session(rec.call_sid)
    assert call.end_reason is EndReason.UPSTREAM_FAILED and call.upstream_failure == "error"
    assert "invalid_value" in call.end_detail and session.responses == []
    assert rec.action_twiml is not None and SAID_APOLOGY in rec.action_twiml


async def test_upstream_connect_timeout_is_a_timeout_failure(start_rig: StartRig) -> None:
    """An Inworld endpoint that never answers the upgrade is a `timeout` failure."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"ws://127.0.0.1:{port}/api/v1/realtime/session"
    async with server:
        rig = await start_rig(inworld_realtime_url=url, upstream_connect_timeout=0.3)
        rec = await rig.place_call(REALTIME_A, turns(1))
        call = await rig.ended(rec.call_sid)
        await rig.stop()
    assert call.upstream_failure == "timeout" and rec.action_twiml is not None
    assert SAID_APOLOGY in rec.action_twiml


async def test_untyped_frames_and_non_fatal_errors_do_not_end_the_call(
    start_rig: StartRig,
) -> None:
    """Frames with no `type` and a non-fatal error event are logged; the call goes on."""
    error = {"type": "server_error", "code": None, "message": "Failed to read content stream."}
    rig = await start_rig(realtime=options(untyped_after_update=True, error_after_update=error))
    rec = await rig.place_call(REALTIME_A, turns(1))
    call = await rig.ended(rec.call_sid)
    assert call.end_reason is EndReason.CALLER_HANGUP and len(rec.responses_heard()) == 2
    assert call.counters.upstream_errors == 3  # two untyped frames and the error event


async def test_normal_end_action_is_empty(rig: Rig) -> None:
    """After a caller hang-up the `<Connect action>` callback answers with an empty response."""
    rec = await rig.place_call(REALTIME_A, turns(0))
    assert rec.closed_by == "caller" and rec.action_status == 200
    assert rec.action_twiml is not None and "<Say>" not in rec.action_twiml
    assert "<Response />" in rec.action_twiml
    assert await rig.services.take_outcome(rec.call_sid) is None  # the callback took it


async def test_two_concurrent_calls_get_their_own_agents(rig: Rig) -> None:
    """Two calls on two numbers at once: each Inworld session is configured for its number."""
    a, b = await asyncio.gather(
        rig.place_call(REALTIME_A, turns(1)), rig.place_call(REALTIME_B, turns(1))
    )
    sa, sb = rig.realtime.session(a.call_sid), rig.realtime.session(b.call_sid)
    await rig.ended(a.call_sid), await rig.ended(b.call_sid)
    ua, ub = sa.of_type("session.update")[0]["session"], sb.of_type("session.update")[0]["session"]
    assert ua["instructions"] == "You are agent A." and ua["audio"]["output"]["voice"] == "Sarah"
    assert ub["instructions"] == "You are agent B." and ub["audio"]["output"]["voice"] == "Dennis"
    assert ub["model"] == "openai/gpt-4.1-nano"
    assert ub["audio"]["input"]["turn_detection"]["eagerness"] == "high"
    assert sa.responses[0].text == "Hello from A."
    assert (sa.appends - 1) * 320 < sa.audio_bytes <= sa.appends * 320  # 40 ms appends
    assert (sb.appends - 1) * 480 < sb.audio_bytes <= sb.appends * 480  # 60 ms appends
    b_turn = rig.calls.turns_of(b.call_sid)[1]  # B records transcripts: caller and heard agent
    assert (b_turn.user_text, b_turn.agent_text) == ("utterance 1", "Sure, I can help with that.")
    assert all(t.user_text == t.agent_text == "" for t in rig.calls.turns_of(a.call_sid))


async def test_unknown_number_gets_the_refusal_twiml(rig: Rig) -> None:
    """A call to a number missing from the config is refused in TwiML; no stream opens."""
    rec = await rig.place_call("+15550009999", turns(0))
    assert rec.webhook_status == 200 and "<Hangup />" in rec.twiml and "<Say>" in rec.twiml
    assert rec.socket_url == "" and rig.realtime.sessions == []


async def test_no_per_call_state_survives_the_calls(start_rig: StartRig) -> None:
    """After calls end (hang-up, drop, upstream failure) no bridge, tracker or socket is left."""
    import gc

    from voiceagent.session.playback import PlaybackTracker
    from voiceagent.session.realtime_call import RealtimeCall

    rig = await start_rig(realtime=options(drop_after_s=1.0))
    await asyncio.gather(
        rig.place_call(REALTIME_A, turns(0)),
        rig.place_call(REALTIME_A, [Say(ms=300), Drop()]),
        rig.place_call(REALTIME_A, turns(2)),
    )
    assert await rig.realtime.wait_no_open_sessions(within=10)
    assert rig.services.calls.count() == 0

    def leftovers() -> list[object]:
        gc.collect()
        return [o for o in gc.get_objects() if isinstance(o, RealtimeCall | PlaybackTracker)]

    # A call leaves the registry before its handler's last lines (records, events) have run; on
    # a loaded machine its objects are still on that frame for a moment. A real leak never ends.
    await until(lambda: leftovers() == [], within_s=5)
