"""Whole realtime calls through the real app write their records and metrics (the default
sinks), with the fake Inworld Realtime server and the simulated Twilio over real sockets."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.rig import REALTIME_A, StartRig
from voiceagent.report import load_report
from voiceagent.sim.script import HangUp, Listen, Say
from voiceagent.store.records.schema import make_engine


async def test_realtime_call_is_recorded_and_measured(start_rig: StartRig) -> None:
    """A two-turn realtime call leaves its call row, greeting and turns in the database and in
    /metrics, with response latencies measured by the mode."""
    rig = await start_rig(records=True)
    script = [Listen(), Say(ms=700, seed=1), Listen(), Say(ms=700, seed=2), Listen(), HangUp()]
    record = await rig.place_call(REALTIME_A, script)
    async with rig.http.get(rig.base_url + "/metrics") as response:
        exposition = await response.text()
    await rig.stop()  # stops the writer: everything queued is flushed
    engine = make_engine(rig.settings.database_url)
    try:
        report = await load_report(engine)
    finally:
        await engine.dispose()
    [arm] = report.arms
    assert (arm.number, arm.mode, arm.calls, arm.turns) == (
        REALTIME_A, "realtime-passthrough", 1, 2
    )  # fmt: skip
    assert arm.latency["response_ms"].n == 2 and arm.latency["greeting_ms"].n == 1
    assert record.call_sid
    samples = {(s.name, s.labels.get("kind", "")): s.value
               for f in text_string_to_metric_families(exposition) for s in f.samples
               if s.labels.get("number", REALTIME_A) == REALTIME_A}  # fmt: skip
    assert samples[("voiceagent_turns_total", "turn")] == 2
    assert samples[("voiceagent_response_latency_seconds_count", "")] == 2
