"""Operator endpoints over real HTTP: `/metrics`, `/admin/reload`, and plans kept across reloads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from voiceagent.app import create_app
from voiceagent.session.call import CallSession, EndReason
from voiceagent.settings import Settings
from voiceagent.store.records import RecordingSink
from voiceagent.store.schema import calls, turns
from voiceagent.web.keys import SERVICES

NUMBER = "+18005550103"
ADMIN = "s3cret-admin-token"


def _experiment(arms: list[tuple[str, str]]) -> dict[str, Any]:
    return {"numbers": {NUMBER: {"experiment": {"name": "modes", "arms": [
        {"name": name, "mode": mode, "weight": 1} for name, mode in arms
    ]}}}}  # fmt: skip


async def _client(aiohttp_client: Any, tmp_path: Path, **overrides: Any) -> TestClient:
    config = tmp_path / "voiceagent.yaml"
    if not config.exists():
        config.write_text(
            yaml.safe_dump(_experiment([("A", "realtime-passthrough"), ("B", "relay-router")]))
        )
    settings = Settings(
        public_url="https://voice.example.test", insecure_skip_signature=True,
        config_path=config, database_url=f"sqlite+aiosqlite:///{tmp_path / 'r.sqlite3'}",
        **overrides,
    )  # fmt: skip
    return await aiohttp_client(create_app(settings))  # type: ignore[no-any-return]


async def test_metrics_scrape_shows_a_call_fed_through_the_app_sink(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    """A call given to the app's sink shows in `/metrics` and is recorded in the database."""
    client = await _client(aiohttp_client, tmp_path)
    services = client.server.app[SERVICES]
    call = CallSession("CA1", NUMBER, "relay-router", arm="B", experiment="modes", started=0.0)
    services.sink.call_started(call)
    for start in (0.0, 4.0):
        turn = call.latency.start_turn(start, "greeting" if start == 0 else "turn")
        call.latency.upstream_byte(start + 0.5)
        call.latency.audio_out(start + 0.6)
        services.sink.turn_finished(call, turn)
    call.end(EndReason.CALLER_HANGUP, now=9.0)
    services.finish_call(call)
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.content_type == "text/plain"
    families = {f.name: f for f in text_string_to_metric_families(await resp.text())}
    labels = {"number": NUMBER, "arm": "B", "mode": "relay-router"}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in families.values() for s in f.samples}  # fmt: skip
    key = tuple(sorted(labels.items()))
    assert samples[("voiceagent_response_latency_seconds_count", key)] == 1
    assert samples[("voiceagent_greeting_latency_seconds_count", key)] == 1
    outcome = tuple(sorted((labels | {"outcome": "caller_hangup"}).items()))
    assert samples[("voiceagent_calls_total", outcome)] == 1
    assert samples[("voiceagent_active_calls", (("mode", "relay-router"),))] == 0
    recorder = next(s for s in services.sink.sinks if isinstance(s, RecordingSink))  # type: ignore[attr-defined]
    await recorder.drained()
    async with recorder.engine.connect() as conn:
        assert (await conn.execute(select(calls.c.end_reason))).scalars().all() == ["caller_hangup"]
        assert len((await conn.execute(select(turns))).all()) == 2


async def test_reload_is_disabled_without_admin_token(aiohttp_client: Any, tmp_path: Path) -> None:
    """With ADMIN_TOKEN empty, /admin/reload does not exist (404), whatever is sent."""
    client = await _client(aiohttp_client, tmp_path)
    resp = await client.post("/admin/reload", headers={"Authorization": "Bearer "})
    assert resp.status == 404


async def test_reload_needs_the_bearer_token(aiohttp_client: Any, tmp_path: Path) -> None:
    """A missing or wrong token is refused with 401 and the config version does not move."""
    client = await _client(aiohttp_client, tmp_path, admin_token=ADMIN)
    assert (await client.post("/admin/reload")).status == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert (await client.post("/admin/reload", headers=wrong)).status == 401
    assert client.server.app[SERVICES].config.version == 1


async def test_reload_answers_new_version_or_the_config_error(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    """A good file bumps the version; a bad one gets 400 with its YAML path and changes nothing."""
    client = await _client(aiohttp_client, tmp_path, admin_token=ADMIN)
    auth = {"Authorization": f"Bearer {ADMIN}"}
    resp = await client.post("/admin/reload", headers=auth)
    assert resp.status == 200 and await resp.json() == {"config_version": 2}
    (tmp_path / "voiceagent.yaml").write_text(
        "numbers:\n  '+18005550103': {mode: carrier-pigeon}\n"
    )
    resp = await client.post("/admin/reload", headers=auth)
    body = await resp.json()
    assert resp.status == 400 and body["path"] == "numbers.+18005550103.mode"
    assert client.server.app[SERVICES].config.version == 2


async def test_reload_between_voice_and_stream_start_keeps_the_call_arm(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    """A call answered before a reload keeps its arm and mode; calls after it use the new config."""
    client = await _client(aiohttp_client, tmp_path, admin_token=ADMIN)
    services = client.server.app[SERVICES]
    form = {"CallSid": "CA" + "7" * 32, "To": NUMBER, "From": "+14155550100"}
    twiml = await (await client.post("/voice", data=form)).text()
    [given] = re.findall(r'<Parameter name="arm" value="([^"]+)"', twiml)
    new_arm, new_mode = {"A": ("C", "relay-router"), "B": ("D", "realtime-passthrough")}[given]
    new_arms = [(new_arm, new_mode), (new_arm + "2", new_mode)]  # the given arm is gone
    (tmp_path / "voiceagent.yaml").write_text(yaml.safe_dump(_experiment(new_arms)))
    resp = await client.post("/admin/reload", headers={"Authorization": f"Bearer {ADMIN}"})
    assert resp.status == 200
    kept = services.plan_for_stream(NUMBER, form["CallSid"])
    assert kept is not None and kept.arm == given
    assert kept.mode == ("realtime-passthrough" if given == "A" else "relay-router")
    fresh = services.plan_for_stream(NUMBER, "CA" + "8" * 32)
    assert fresh is not None and fresh.arm in {new_arm, new_arm + "2"}
