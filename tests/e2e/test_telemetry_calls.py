"""Whole realtime calls through the real app write their records and metrics (the default
sinks), with the fake Inworld Realtime server and the simulated Twilio over real sockets."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.realtime_harness import CONFIG, NUMBER_A, PUBLIC, TOKEN, fast_options
from voiceagent.app import create_app
from voiceagent.report import load_report
from voiceagent.settings import Settings
from voiceagent.sim.call_script import CallScript, HangUp, Speak, WaitForAgent
from voiceagent.sim.fake_inworld_realtime import FakeInworldRealtime
from voiceagent.sim.twilio_media import SimTarget, place_call
from voiceagent.store.schema import make_engine


async def test_realtime_call_is_recorded_and_measured(tmp_path: Path) -> None:
    """A two-turn realtime call leaves its call row, greeting and turns in the database and in
    /metrics, with response latencies measured by the mode."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'records.sqlite3'}"
    script = CallScript((WaitForAgent(), Speak(700, seed=1), WaitForAgent(),
                         Speak(700, seed=2), WaitForAgent(), HangUp()))  # fmt: skip
    async with FakeInworldRealtime(fast_options()) as fake:
        settings = Settings(public_url=PUBLIC, twilio_auth_token=TOKEN, database_url=url,
                            inworld_api_key=fake.options.api_key,
                            inworld_realtime_url=fake.url)  # fmt: skip
        server = TestServer(create_app(settings, CONFIG), host="127.0.0.1")
        await server.start_server()
        try:
            target = SimTarget(str(server.make_url("")).rstrip("/"), PUBLIC, TOKEN)
            record = await place_call(target, NUMBER_A, script)
            async with (
                aiohttp.ClientSession() as http,
                http.get(server.make_url("/metrics")) as response,
            ):
                exposition = await response.text()
        finally:
            await server.close()  # stops the writer: everything queued is flushed
    engine = make_engine(url)
    try:
        report = await load_report(engine)
    finally:
        await engine.dispose()
    [arm] = report.arms
    assert (arm.number, arm.mode, arm.calls, arm.turns) == (NUMBER_A, "realtime-passthrough", 1, 2)
    assert arm.latency["response_ms"].n == 2 and arm.latency["greeting_ms"].n == 1
    assert record.call_sid
    samples = {(s.name, s.labels.get("kind", "")): s.value
               for f in text_string_to_metric_families(exposition) for s in f.samples
               if s.labels.get("number", NUMBER_A) == NUMBER_A}  # fmt: skip
    assert samples[("voiceagent_turns_total", "turn")] == 2
    assert samples[("voiceagent_response_latency_seconds_count", "")] == 2
