"""Shared set-up of the realtime e2e tests: the real app on a test server, the fake Inworld
Realtime server and the simulated Twilio, all over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestServer

from voiceagent.app import create_app
from voiceagent.config import parse_config
from voiceagent.runtime import Services
from voiceagent.session.call import CallSession
from voiceagent.session.latency import TurnTiming
from voiceagent.settings import Settings
from voiceagent.sim.call_script import CallRecord, CallScript
from voiceagent.sim.fake_inworld_realtime import FakeInworldRealtime
from voiceagent.sim.fake_options import FakeRealtimeOptions
from voiceagent.sim.twilio_media import SimTarget, place_call
from voiceagent.web.keys import SERVICES

PUBLIC = "https://voice.example.test"
TOKEN = "test-auth-token"
NUMBER_A = "+18005550101"
NUMBER_B = "+18005550103"
NUMBER_BAD_STT = "+18005550104"
CONFIG = parse_config(
    {
        "defaults": {"agent": {"apology": "Sorry, we have a technical problem. Goodbye."}},
        "numbers": {
            NUMBER_A: {
                "mode": "realtime-passthrough",
                "agent": {
                    "voice": "Sarah",
                    "instructions": "You are agent A.",
                    "greeting": "Hello from A.",
                },
            },
            NUMBER_B: {
                "mode": "realtime-passthrough",
                "agent": {
                    "voice": "Dennis",
                    "instructions": "You are agent B.",
                    "llm_model": "openai/gpt-4.1-nano",
                    "turn_detection": {"type": "semantic_vad", "eagerness": "high"},
                    "apology": "B is sorry.",
                },
                "realtime": {"append_ms": 60},
                "record_transcripts": True,
            },
            NUMBER_BAD_STT: {
                "mode": "realtime-passthrough",
                "agent": {"transcription_model": "nobody/no-such-stt"},
            },
        },
    }
)


def fast_options(**changes: Any) -> FakeRealtimeOptions:
    """Fake delays accelerated for tests (short answers, streamed quickly)."""
    base: dict[str, Any] = {
        "first_delta_delay_s": 0.02,
        "chunk_ms": 100,
        "chunk_gap_s": 0.01,
        "response_audio_ms": 600,
        "vad_hangover_ms": 300,
    }
    base.update(changes)
    return FakeRealtimeOptions(**base)


class CollectingSink:
    """A CallSink that keeps the ended calls (the seam the telemetry store plugs into)."""

    def __init__(self) -> None:
        self.started: list[CallSession] = []
        self.turns: list[tuple[str, TurnTiming]] = []
        self.ended: dict[str, CallSession] = {}

    def call_started(self, call: CallSession) -> None:
        self.started.append(call)

    def turn_finished(self, call: CallSession, turn: TurnTiming) -> None:
        self.turns.append((call.call_sid, turn))

    def call_ended(self, call: CallSession) -> None:
        self.ended[call.call_sid] = call


@dataclass
class Harness:
    fake: FakeInworldRealtime
    target: SimTarget
    services: Services
    sink: CollectingSink

    async def call(self, script: CallScript, to: str = NUMBER_A, **kw: Any) -> CallRecord:
        return await place_call(self.target, to, script, **kw)

    async def ended(self, call_sid: str, within: float = 5.0) -> CallSession:
        """The server's CallSession once its call_ended milestone arrived."""
        deadline = asyncio.get_running_loop().time() + within
        while call_sid not in self.sink.ended:
            assert asyncio.get_running_loop().time() < deadline, "call never ended"
            await asyncio.sleep(0.01)
        return self.sink.ended[call_sid]


@asynccontextmanager
async def harness(
    options: FakeRealtimeOptions | None = None, **settings: Any
) -> AsyncIterator[Harness]:
    """The app against a fake Inworld; settings overrides go to Settings."""
    async with FakeInworldRealtime(options or fast_options()) as fake:
        values: dict[str, Any] = {
            "public_url": PUBLIC,
            "twilio_auth_token": TOKEN,
            "inworld_api_key": fake.options.api_key,
            "inworld_realtime_url": fake.url,
            "database_url": "",
            "upstream_connect_timeout": 3.0,
        }
        values.update(settings)
        app = create_app(Settings(**values), CONFIG)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            base = str(server.make_url("")).rstrip("/")
            services = app[SERVICES]
            sink = CollectingSink()
            services.sink = sink
            yield Harness(fake, SimTarget(base, PUBLIC, TOKEN), services, sink)
        finally:
            await server.close()
