"""Recordings through the real wire: the app asks the fake Twilio REST API to record a call,
Twilio's signed `/recording-status` callback brings URL and duration onto the call's record and
to the business, in `call.ended` or in a later `call.recording_ready`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.rig import PUBLIC, TOKEN, Rig, StartRig, rig_config
from tests.webhooks.conftest import HOOK_SETTINGS
from voiceagent.sim.fake_twilio_rest import FakeTwilioRest
from voiceagent.sim.hooks_receiver import HooksReceiver
from voiceagent.sim.script import HangUp, Listen, Pause
from voiceagent.sim.webhooks import new_sid
from voiceagent.webhooks.events import event_id

RECORDED = "+18005550161"


@pytest.fixture
async def twilio() -> AsyncIterator[tuple[FakeTwilioRest, dict[str, str]]]:
    """The fake Twilio REST API; its callbacks go to the rig named in the returned dict."""
    where = {"base": ""}
    fake = FakeTwilioRest(auth_token=TOKEN, url_map=lambda u: u.replace(PUBLIC, where["base"]))
    async with fake:
        yield fake, where


async def _rig(start_rig: StartRig, hooks: HooksReceiver, twilio: Any) -> Rig:
    fake, where = twilio
    config = rig_config(**{RECORDED: {
        "mode": "realtime-passthrough", "recording": {"enabled": True, "channels": "dual"},
        "webhooks": {"call_events": {"url": hooks.events_url}}}})  # fmt: skip
    rig = await start_rig(config=config, records=True, twilio_account_sid=fake.account_sid,
                          twilio_api_base_url=fake.url, **HOOK_SETTINGS)  # fmt: skip
    where["base"] = rig.base_url
    return rig


async def _recording_started(fake: FakeTwilioRest, call_sid: str) -> None:
    for _ in range(500):  # the app asks for it when the stream starts
        if any(r.call_sid == call_sid for r in fake.recordings.values()):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the recording was never started")


async def test_recording_after_the_call(
    start_rig: StartRig, hooks: HooksReceiver, twilio: Any
) -> None:
    """A recording completed after the call ended is sent as `call.recording_ready` and kept
    on the call's record; the REST request asked for dual channels and our callback URL."""
    fake, _ = twilio
    rig = await _rig(start_rig, hooks, twilio)
    sid = new_sid("CA")
    fake.add_call(sid, "+14155550100", RECORDED)
    await rig.place_call(RECORDED, [Listen(), HangUp()], call_sid=sid)
    await _recording_started(fake, sid)
    request = next(r for r in fake.received if r.path.endswith("/Recordings.json"))
    assert request.param("RecordingChannels") == "dual"
    assert request.param("RecordingStatusCallback") == PUBLIC + "/recording-status"
    await hooks.wait_events(1)
    await fake.end_call(sid)
    events = await hooks.wait_events(2)
    ended = events[event_id(sid, "call.ended")]
    assert ended["recording_url"] is None
    ready = events[event_id(sid, "call.recording_ready")]
    rec = next(r for r in fake.recordings.values() if r.call_sid == sid)
    assert ready["recording_url"] == fake.media_url(rec)
    assert all(d.verified for d in hooks.deliveries)
    found = await rig.call_row(sid)
    assert found["recording_url"] == fake.media_url(rec) and found["recording_sid"] == rec.sid
    assert found["recording_duration_s"] is not None


async def test_recording_before_the_end_is_in_call_ended(
    start_rig: StartRig, hooks: HooksReceiver, twilio: Any
) -> None:
    """A recording completed while the call is still up lands in `call.ended` itself."""
    fake, _ = twilio
    rig = await _rig(start_rig, hooks, twilio)
    sid = new_sid("CA")
    fake.add_call(sid, "+14155550100", RECORDED)
    call = asyncio.create_task(
        rig.place_call(RECORDED, [Listen(), Pause(1500), HangUp()], call_sid=sid)
    )
    await _recording_started(fake, sid)
    await fake.end_call(sid)  # Twilio's side completes the recording first
    await fake.callbacks.wait_for(lambda d: d.form.get("RecordingStatus") == "completed")
    await call
    events = await hooks.wait_events(1)
    rec = next(r for r in fake.recordings.values() if r.call_sid == sid)
    assert events[event_id(sid, "call.ended")]["recording_url"] == fake.media_url(rec)


async def test_recording_status_needs_a_signature(rig: Rig) -> None:
    """An unsigned `/recording-status` is refused (403), like every Twilio webhook."""
    form = {"CallSid": new_sid("CA"), "RecordingStatus": "completed",
            "RecordingUrl": "https://evil.test/x", "RecordingSid": new_sid("RE")}  # fmt: skip
    status, _ = await rig.post_signed("/recording-status", form, sign=False)
    assert status == 403
    status, _ = await rig.post_signed("/recording-status", form)
    assert status == 204
