"""Failover across modes: Inworld Realtime failing hands the same call to the relay mode."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestServer

from voiceagent.app import create_app
from voiceagent.config import parse_config
from voiceagent.settings import Settings
from voiceagent.sim import relay_caller as rc
from voiceagent.sim.call_script import CallScript, HangUp, Speak, WaitForAgent
from voiceagent.sim.fake_inworld_realtime import FakeInworldRealtime
from voiceagent.sim.fake_options import FakeRealtimeOptions
from voiceagent.sim.fake_router import FakeRouter
from voiceagent.sim.twilio_media import SimTarget, place_call
from voiceagent.web.keys import SERVICES

PUBLIC, TOKEN, KEY = "https://voice.example.test", "test-auth-token", "fake-inworld-key"
NUMBER = "+18005550105"
CONFIG = parse_config({
    "defaults": {"record_transcripts": True},
    "numbers": {NUMBER: {"mode": "realtime-passthrough", "fallback_mode": "relay-router",
                         "agent": {"failover_greeting": "Sorry, I am back."}}},
})  # fmt: skip


@dataclass
class Rig:
    server: TestServer
    realtime: FakeInworldRealtime
    router: FakeRouter

    @property
    def base(self) -> str:
        return str(self.server.make_url("")).rstrip("/")


@asynccontextmanager
async def rig(**options: Any) -> AsyncIterator[Rig]:
    opts = FakeRealtimeOptions(api_key=KEY, first_delta_delay_s=0.02, response_audio_ms=500,
                               vad_hangover_ms=300, **options)  # fmt: skip
    async with FakeInworldRealtime(opts) as realtime:
        router = FakeRouter(api_key=KEY, ms_per_char=10.0)
        await router.start()
        settings = Settings(public_url=PUBLIC, twilio_auth_token=TOKEN, inworld_api_key=KEY,
                            inworld_realtime_url=realtime.url, inworld_router_url=router.url,
                            database_url="")  # fmt: skip
        server = TestServer(create_app(settings, CONFIG))
        await server.start_server()
        try:
            yield Rig(server, realtime, router)
        finally:
            await server.close()
            await router.close()


async def _fail_then_relay(r: Rig, script: CallScript) -> tuple[Any, rc.RelayCallRecord]:
    rec = await place_call(SimTarget(r.base, PUBLIC, TOKEN), NUMBER, script)
    assert rec.action_twiml is not None and "<ConversationRelay" in rec.action_twiml
    relay = await rc.place_relay_call(
        r.base, public_url=PUBLIC, auth_token=TOKEN, number=NUMBER, speed=4.0,
        script=[rc.Say("Are you still there?"), rc.Hangup()], call_sid=rec.call_sid,
        twiml=rec.action_twiml,
    )  # fmt: skip
    return rec, relay


async def test_refused_realtime_session_fails_over_to_relay() -> None:
    """Inworld Realtime refusing (503): the action hands the call to ConversationRelay, which
    opens with the failover greeting and answers the caller through the Router."""
    async with rig(refuse_status=503) as r:
        _rec, relay = await _fail_then_relay(r, CallScript((Speak(300), HangUp())))
    assert relay.parameters.get("failover_from") == "realtime-passthrough"
    assert relay.turns[0].clips and relay.turns[1].clips  # failover greeting, then a reply
    messages = r.router.requests[0].messages
    assert messages[-1]["content"] == "Sorry, I am back."
    last = r.router.requests[-1].messages
    assert last[-1] == {"role": "user", "content": "Are you still there?"}


async def test_dropped_realtime_session_fails_over_with_the_conversation() -> None:
    """Inworld dropping mid-call: the relay leg carries the conversation heard so far."""
    script = CallScript((WaitForAgent("quiet"), Speak(600), WaitForAgent("quiet"),
                         Speak(600), WaitForAgent("quiet"), HangUp()))  # fmt: skip
    async with rig(drop_after_responses=2) as r:
        rec, _relay = await _fail_then_relay(r, script)
        calls = r.server.app[SERVICES].calls
    assert rec.heard_ms > 0 and calls.count() == 0
    last = r.router.requests[-1].messages
    roles = [m["role"] for m in last]
    assert roles.count("assistant") >= 2, last  # realtime greeting + reply, failover greeting
    assert last[-1] == {"role": "user", "content": "Are you still there?"}
