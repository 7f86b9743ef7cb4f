"""The one test rig: the real app on 127.0.0.1 against the fake Inworld Realtime and the fake
Router, called by the simulated Twilio. Fixtures that hand it out are in ``tests/conftest.py``
(its docstring is the manual); this module holds what tests import: numbers, configs, options.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from voiceagent.app import create_app
from voiceagent.config import Config, parse_config
from voiceagent.runtime import Services
from voiceagent.session.call import CallSession, CallSink
from voiceagent.session.latency import TurnTiming
from voiceagent.settings import Settings
from voiceagent.sim.callee import Callee, Callees
from voiceagent.sim.caller import place_call
from voiceagent.sim.fake_inworld_realtime import FakeInworldRealtime
from voiceagent.sim.fake_options import FakeRealtimeOptions
from voiceagent.sim.fake_router import FakeRouter
from voiceagent.sim.fake_twilio_rest import FakeTwilioRest
from voiceagent.sim.script import CallRecord, Script
from voiceagent.sim.webhooks import SimTarget, Webhooks, call_form, new_sid
from voiceagent.store.records.schema import calls, make_engine
from voiceagent.web.keys import SERVICES

PUBLIC = "https://voice.example.test"
TOKEN = "test-auth-token"
KEY = "fake-inworld-key"  # both fakes and the app's INWORLD_API_KEY
REALTIME_A = "+18005550101"  # realtime, agent A (Sarah, greets "Hello from A.")
RELAY = "+18005550102"  # relay-router ("Hello there!", apology "Sorry, a glitch.")
REALTIME_B = "+18005550103"  # realtime, agent B (Dennis, 60 ms appends, transcripts recorded)
BAD_STT = "+18005550104"  # realtime with a transcription model the fake refuses
FAILOVER = "+18005550105"  # realtime, falls back to relay-router ("Sorry, I am back.")
EXPERIMENT = "+18005550106"  # A/B experiment: realtime vs relay, 50/50 by CallSid
APOLOGY = "Sorry, we have a technical problem. Goodbye."
RELAY_SPEED, RELAY_QUIET_S = 20.0, 0.15  # simulated relay playback: fast, short quiet


def realtime_options(**changes: Any) -> FakeRealtimeOptions:
    """The fake Inworld Realtime's test knobs (short answers, streamed quickly) + ``changes``."""
    base: dict[str, Any] = {"api_key": KEY, "first_delta_delay_s": 0.02, "chunk_ms": 100,
                            "chunk_gap_s": 0.01, "response_audio_ms": 600,
                            "vad_hangover_ms": 300}  # fmt: skip
    return FakeRealtimeOptions(**(base | changes))


def make_router(**changes: Any) -> FakeRouter:
    """A fake Router (not started) with the test knobs + ``changes``; the rig starts it."""
    knobs: dict[str, Any] = {"api_key": KEY, "ms_per_char": 40.0, "audio_chunk_ms": 100.0}
    return FakeRouter(**(knobs | changes))


def _numbers(relay: Mapping[str, Any]) -> dict[str, Any]:
    rt = "realtime-passthrough"
    return {
        REALTIME_A: {"mode": rt, "agent": {"voice": "Sarah", "instructions": "You are agent A.",
                                           "greeting": "Hello from A."}},
        REALTIME_B: {"mode": rt, "record_transcripts": True, "realtime": {"append_ms": 60},
                     "agent": {"voice": "Dennis", "instructions": "You are agent B.",
                               "llm_model": "openai/gpt-4.1-nano", "apology": "B is sorry.",
                               "turn_detection": {"type": "semantic_vad", "eagerness": "high"}}},
        BAD_STT: {"mode": rt, "agent": {"transcription_model": "nobody/no-such-stt"}},
        RELAY: {"mode": "relay-router", "relay": dict(relay),
                "agent": {"instructions": "Be brief.", "greeting": "Hello there!",
                          "apology": "Sorry, a glitch."}},
        FAILOVER: {"mode": rt, "fallback_mode": "relay-router", "record_transcripts": True,
                   "agent": {"failover_greeting": "Sorry, I am back."}},
        EXPERIMENT: {"experiment": {"name": "modes", "arms": [
            {"name": "realtime", "mode": rt, "weight": 1},
            {"name": "relay", "mode": "relay-router", "weight": 1}]}},
    }  # fmt: skip


def rig_config_data(*, relay: Mapping[str, Any] | None = None, **numbers: Any) -> dict[str, Any]:
    """The rig's config as YAML data (what ``rig_config`` parses; a served process reads it
    from a file)."""
    return {"defaults": {"agent": {"apology": APOLOGY}},
            "numbers": _numbers(relay or {}) | numbers}  # fmt: skip


def rig_config(*, relay: Mapping[str, Any] | None = None, **numbers: Any) -> Config:
    """The rig's config: every number above; ``relay`` knobs for RELAY; keyword entries
    (``**{"+1800...": {...}}``) add or replace numbers."""
    return parse_config(rig_config_data(relay=relay, **numbers))


@dataclass
class CollectingSink:
    """The app's sink, wrapped: keeps every call milestone and passes it on (metrics, records)."""

    inner: CallSink
    started: list[CallSession] = field(default_factory=list)
    turns: list[tuple[str, TurnTiming]] = field(default_factory=list)
    ended: dict[str, CallSession] = field(default_factory=dict)
    _news: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def call_started(self, call: CallSession) -> None:
        self.started.append(call)
        self.inner.call_started(call)

    def turn_finished(self, call: CallSession, turn: TurnTiming) -> None:
        self.turns.append((call.call_sid, turn))
        self.inner.turn_finished(call, turn)

    def call_ended(self, call: CallSession) -> None:
        self.ended[call.call_sid] = call
        self._news.set()
        self.inner.call_ended(call)

    def turns_of(self, call_sid: str) -> list[TurnTiming]:
        return [t for sid, t in self.turns if sid == call_sid]

    async def wait_ended(self, call_sid: str) -> CallSession:
        while call_sid not in self.ended:
            self._news.clear()
            await self._news.wait()
        return self.ended[call_sid]


@dataclass
class Rig:
    """A running app with its fakes; see tests/conftest.py for the tour."""

    server: TestServer
    realtime: FakeInworldRealtime
    router: FakeRouter
    settings: Settings
    calls: CollectingSink
    http: aiohttp.ClientSession

    @property
    def app(self) -> web.Application:
        return self.server.app

    @property
    def services(self) -> Services:
        return self.app[SERVICES]

    @property
    def base_url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def target(self) -> SimTarget:
        return SimTarget(self.base_url, PUBLIC, TOKEN)

    async def place_call(self, to: str, script: Script, **kw: Any) -> Any:
        """One simulated call (``voiceagent.sim.caller.place_call``); relay playback runs at
        RELAY_SPEED unless ``speed`` is given. Typed Any: a Media or Relay CallRecord."""
        kw.setdefault("speed", RELAY_SPEED)
        kw.setdefault("quiet_s", RELAY_QUIET_S)
        record: CallRecord = await place_call(self.target, to, script, http=self.http, **kw)
        return record

    async def post_signed(
        self, path: str, form: Mapping[str, str], *, sign: bool = True
    ) -> tuple[int, str]:
        """POST ``form`` to ``path`` (``/voice``, ``/voice/action?mode=...``) signed as Twilio
        signs it over the public URL (``sign=False``: no signature header): status, body."""
        url = PUBLIC + path
        if sign:
            return await Webhooks(self.target, self.http, dict(form)).post(url, dict(form))
        async with self.http.post(self.target.local(url), data=dict(form)) as resp:
            return resp.status, await resp.text()

    async def stop(self) -> None:
        """Stop the app now (its writer flushes the records); the fakes stop at teardown."""
        await self.server.close()

    async def call_row(self, call_sid: str) -> dict[str, Any]:
        """The call's row in the records database (after `stop()` flushed the writer)."""
        engine = make_engine(self.settings.database_url)
        try:
            async with engine.connect() as conn:
                found = await conn.execute(select(calls).where(calls.c.call_sid == call_sid))
                return dict(found.mappings().one())
        finally:
            await engine.dispose()

    async def ended(self, call_sid: str, within: float = 10.0) -> CallSession:
        """The server's CallSession once its call_ended milestone arrived."""
        async with asyncio.timeout(within):
            return await self.calls.wait_ended(call_sid)


def webhook_form(to: str, call_sid: str | None = None, **extra: str) -> dict[str, str]:
    """The incoming-call form Twilio posts to /voice (plus ``extra`` fields)."""
    return call_form(call_sid or new_sid("CA"), to, "+14155550100", new_sid("AC")) | extra


StartRig = Callable[..., Awaitable[Rig]]  # the `start_rig` fixture's type


@asynccontextmanager
async def running_rig(
    *,
    config: Config | Path | None = None,
    realtime: FakeRealtimeOptions | None = None,
    router: FakeRouter | None = None,
    **settings: Any,
) -> AsyncIterator[Rig]:
    """Start both fakes and the app (``config`` a Config, a YAML path, or the rig's own;
    ``settings`` override Settings fields); stop everything on exit."""
    router = router or make_router()
    async with FakeInworldRealtime(realtime or realtime_options()) as fake:
        await router.start()
        if isinstance(config, Path):
            settings.setdefault("config_path", config)
        values = {"public_url": PUBLIC, "twilio_auth_token": TOKEN, "inworld_api_key": KEY,
                  "inworld_realtime_url": fake.url, "inworld_router_url": router.url,
                  "database_url": "", "upstream_connect_timeout": 3.0,
                  "router_first_byte_timeout": 1.0} | settings  # fmt: skip
        app_settings = Settings(**values)
        chosen = None if isinstance(config, Path) else config or rig_config()
        app = create_app(app_settings, chosen)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            services = app[SERVICES]
            sink = services.sink = CollectingSink(services.sink)
            async with aiohttp.ClientSession() as http:
                yield Rig(server, fake, router, app_settings, sink, http)
        finally:
            await server.close()
            await router.close()


ADMIN = "test-admin-token-0123456789abcdef0123"


@dataclass
class OutboundRig:
    """A rig whose app places calls through the fake Twilio REST API, the callees played by
    ``voiceagent.sim.callee`` (see ``running_outbound``)."""

    rig: Rig
    twilio: FakeTwilioRest
    callees: Callees

    async def dial(self, from_: str, to: str, **variables: str) -> tuple[int, dict[str, Any]]:
        """``POST /calls`` with the admin token: status and JSON answer."""
        body = {"from": from_, "to": to, "variables": variables}
        headers = {"Authorization": f"Bearer {ADMIN}"}
        url = self.rig.base_url + "/calls"
        async with self.rig.http.post(url, json=body, headers=headers) as resp:
            return resp.status, await resp.json()


@asynccontextmanager
async def running_outbound(
    start_rig: StartRig, callees: Mapping[str, Callee], **kw: Any
) -> AsyncIterator[OutboundRig]:
    """A rig (``start_rig(**kw)``) with TWILIO_* settings aimed at a running fake Twilio REST
    API that owns the config's numbers and plays ``callees`` (number → Callee)."""
    holder: list[Rig] = []
    fake = FakeTwilioRest(auth_token=TOKEN, url_map=lambda url: holder[0].target.local(url))
    async with fake:
        kw = {"admin_token": ADMIN, "twilio_account_sid": fake.account_sid,
              "twilio_api_base_url": fake.url, "outbound_cps": 50.0} | kw  # fmt: skip
        rig = await start_rig(**kw)
        holder.append(rig)
        for number in rig.services.config.current.numbers:
            fake.add_number(number)
        player = Callees(fake, rig.target, rig.http, dict(callees), speed=RELAY_SPEED,
                         quiet_s=RELAY_QUIET_S)  # fmt: skip
        fake.player = player
        yield OutboundRig(rig, fake, player)


async def until(condition: Callable[[], bool], within_s: float = 30.0) -> None:
    """Wait until `condition()` is true (checked every 20 ms); AssertionError after
    `within_s` seconds."""
    for _ in range(max(1, round(within_s / 0.02))):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")
