"""Shared set-up of the relay-router end-to-end tests: the app, the fake Router, a caller."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestServer

from voiceagent.app import create_app
from voiceagent.config import Config, parse_config
from voiceagent.settings import Settings
from voiceagent.sim.fake_router import FakeRouter
from voiceagent.sim.relay_caller import RelayCallRecord, ScriptStep, place_relay_call

PUBLIC = "https://voice.example.test"
TOKEN = "test-auth-token"
KEY = "test-inworld-key"
NUMBER = "+18005550102"
SPEED = 20.0


def relay_config(**relay: Any) -> Config:
    """A config whose NUMBER is a relay-router number with `relay` knobs."""
    entry: dict[str, Any] = {"mode": "relay-router", "relay": relay}
    return parse_config({
        "defaults": {"agent": {"instructions": "Be brief.", "greeting": "Hello there!",
                               "apology": "Sorry, a glitch."}},
        "numbers": {NUMBER: entry},
    })  # fmt: skip


@dataclass
class Rig:
    router: FakeRouter
    server: TestServer
    settings: Settings

    @property
    def base_url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def call(self, script: Sequence[ScriptStep], **kwargs: Any) -> RelayCallRecord:
        kwargs.setdefault("speed", SPEED)
        kwargs.setdefault("quiet_s", 0.15)
        return await place_relay_call(
            self.base_url, public_url=PUBLIC, auth_token=TOKEN, number=NUMBER,
            script=script, **kwargs,
        )  # fmt: skip


@asynccontextmanager
async def relay_rig(
    config: Config | None = None, router: FakeRouter | None = None, **settings: Any
) -> AsyncIterator[Rig]:
    """A running fake Router and a voiceagent app on real 127.0.0.1 sockets."""
    router = router or FakeRouter(api_key=KEY, ms_per_char=40.0, audio_chunk_ms=100.0)
    await router.start()
    settings.setdefault("router_first_byte_timeout", 1.0)
    values = Settings(
        public_url=PUBLIC, twilio_auth_token=TOKEN, inworld_api_key=KEY,
        inworld_router_url=router.url, **settings,
    )  # fmt: skip
    server = TestServer(create_app(values, config or relay_config()), host="127.0.0.1")
    await server.start_server()
    try:
        yield Rig(router, server, values)
    finally:
        await server.close()
        await router.close()
