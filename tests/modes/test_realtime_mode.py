"""The realtime-passthrough mode driven through an in-memory phone channel, against the fake
Inworld Realtime server (the upstream is a real socket: the mode's client is aiohttp)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest

from tests.e2e.realtime_harness import CONFIG, NUMBER_A, fast_options
from voiceagent.config import parse_config
from voiceagent.modes.realtime_passthrough import RealtimePassthrough
from voiceagent.protocols import twilio_media as tm
from voiceagent.runtime import CallOutcome, ConfigHolder, Services
from voiceagent.session.call import EndReason
from voiceagent.settings import Settings
from voiceagent.sim.fake_inworld_realtime import FakeInworldRealtime
from voiceagent.transport.channel import MemoryChannel, memory_pair

MODE = RealtimePassthrough()
CALL_SID = "CA" + "a" * 32
STREAM_SID = "MZ" + "b" * 32


@asynccontextmanager
async def _services(fake: FakeInworldRealtime) -> AsyncIterator[Services]:
    settings = Settings(
        public_url="https://pub.example.test",
        inworld_api_key="fake-inworld-key",
        inworld_realtime_url=fake.url,
        database_url="",
    )
    async with aiohttp.ClientSession() as http:
        yield Services(settings=settings, config=ConfigHolder(CONFIG), http=http)


def _start(number: str = NUMBER_A) -> str:
    return tm.dump(
        tm.Start(
            sequence_number=1,
            stream_sid=STREAM_SID,
            start=tm.StartInfo(
                account_sid="AC" + "c" * 32,
                stream_sid=STREAM_SID,
                call_sid=CALL_SID,
                custom_parameters={"number": number, "mode": MODE.name},
            ),
        )
    )


def _media(audio: bytes, chunk: int) -> str:
    return tm.dump(
        tm.Media(
            stream_sid=STREAM_SID,
            media=tm.MediaInfo(
                track="inbound",
                chunk=chunk,
                timestamp=chunk * 20,
                payload=base64.b64encode(audio).decode(),
            ),
        )
    )


async def _frames_until(twilio: MemoryChannel, event: str) -> list[dict[str, Any]]:
    seen = []
    async with asyncio.timeout(10):
        while True:
            raw = await twilio.receive()
            assert raw is not None, f"phone closed before {event}"
            frame = orjson.loads(raw)
            seen.append(frame)
            if frame["event"] == event:
                return seen


def test_twiml_streams_with_parameters_and_action() -> None:
    """The TwiML streams to wss://PUBLIC/media-stream with <Parameter>s, never a query string."""
    config = parse_config(
        {
            "numbers": {
                "+18005550111": {
                    "experiment": {
                        "name": "x",
                        "arms": [
                            {"name": "a", "mode": "realtime-passthrough", "weight": 1},
                            {"name": "b", "mode": "realtime-passthrough", "weight": 1},
                        ],
                    }
                }
            }
        }
    )
    plan = config.plan_for("+18005550111", CALL_SID)
    assert plan is not None
    settings = Settings(public_url="https://pub.example.test")
    services = Services(settings=settings, config=ConfigHolder(config), http=None)  # type: ignore[arg-type]
    xml = MODE.twiml(plan, CALL_SID, services)
    assert '<Stream url="wss://pub.example.test/media-stream">' in xml
    assert 'action="https://pub.example.test/voice/action?mode=realtime-passthrough"' in xml
    assert '<Parameter name="number" value="+18005550111" />' in xml
    assert f'<Parameter name="arm" value="{plan.arm}" />' in xml
    assert '<Parameter name="mode" value="realtime-passthrough" />' in xml


async def test_call_greets_then_stop_closes_upstream_and_flushes_audio() -> None:
    """Frames before `start` are ignored; the greeting arrives as media+mark; `stop` ends the
    call, the audio remainder is appended and the Inworld session closes."""
    async with FakeInworldRealtime(fast_options()) as fake, _services(fake) as services:
        phone, twilio = memory_pair()
        serving = asyncio.create_task(MODE.serve(phone, services))
        await twilio.send('{"event":"connected","protocol":"Call","version":"1.0.0"}')
        await twilio.send(_media(b"\xff" * 160, 1))  # media before start: ignored
        await twilio.send(_start())
        frames = await _frames_until(twilio, "mark")
        assert [f["event"] for f in frames[-2:]] == ["media", "mark"]
        for chunk in (1, 2, 3):
            await twilio.send(_media(b"\xff" * 160, chunk))
        stop = tm.Stop(
            sequence_number=9,
            stream_sid=STREAM_SID,
            stop=tm.StopInfo(account_sid="AC" + "c" * 32, call_sid=CALL_SID),
        )
        await twilio.send(tm.dump(stop))
        await asyncio.wait_for(serving, 10)
        outcome = services.outcomes.take(CALL_SID)
        assert await fake.wait_no_open_sessions(within=2)
    assert outcome is not None and outcome.reason is EndReason.CALLER_HANGUP
    assert fake.sessions[0].audio_bytes == 480 and fake.sessions[0].appends == 2
    assert phone.closed


async def test_cancellation_ends_the_call_as_drained_and_closes_both_sides() -> None:
    """A server drain cancelling the call records DRAINED and closes phone and Inworld."""
    async with FakeInworldRealtime(fast_options()) as fake, _services(fake) as services:
        phone, twilio = memory_pair()
        serving = asyncio.create_task(MODE.serve(phone, services))
        await twilio.send(_start())
        await _frames_until(twilio, "media")
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving
        outcome = services.outcomes.take(CALL_SID)
        assert await fake.wait_no_open_sessions(within=2)
    assert outcome is not None and outcome.reason is EndReason.DRAINED
    assert phone.closed


async def test_stream_for_an_unconfigured_number_is_closed() -> None:
    """A `start` naming a number the config does not have closes the stream, no upstream."""
    async with FakeInworldRealtime(fast_options()) as fake, _services(fake) as services:
        phone, twilio = memory_pair()
        await twilio.send(_start("+15550001111"))
        await asyncio.wait_for(MODE.serve(phone, services), 5)
        outcome = services.outcomes.take(CALL_SID)
    assert outcome is not None and outcome.reason is EndReason.PROTOCOL_ERROR
    assert fake.sessions == [] and phone.closed


@pytest.mark.parametrize(
    ("reason", "apology"),
    [(EndReason.UPSTREAM_FAILED, True), (EndReason.CALLER_HANGUP, False), (None, False)],
)
def test_action_apologises_only_after_an_upstream_failure(
    reason: EndReason | None, apology: bool
) -> None:
    """`<Connect action>`: the number's apology and hang-up after an upstream failure, else
    an empty response (also when the outcome is unknown)."""
    services = Services(settings=Settings(), config=ConfigHolder(CONFIG), http=None)  # type: ignore[arg-type]
    if reason is not None:
        services.outcomes.record(CALL_SID, CallOutcome(reason, "dropped", MODE.name))
    xml = MODE.action({"CallSid": CALL_SID, "To": NUMBER_A}, services)
    expected = "<Say>Sorry, we have a technical problem. Goodbye.</Say><Hangup />"
    assert (expected in xml) is apology
    assert services.outcomes.take(CALL_SID) is None  # taken: no state left behind
