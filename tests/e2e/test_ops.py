"""Operator endpoints over real HTTP: `/metrics`, `/admin/reload`, and plans kept across reloads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from tests.rig import Rig, StartRig
from voiceagent.session.call import CallSession, EndReason
from voiceagent.store.records.schema import calls, turns
from voiceagent.store.records.sink import RecordingSink

NUMBER = "+18005550103"
ADMIN = "s3cret-admin-token-0123456789abcdef"


def _experiment(arms: list[tuple[str, str]]) -> dict[str, Any]:
    return {"numbers": {NUMBER: {"experiment": {"name": "modes", "arms": [
        {"name": name, "mode": mode, "weight": 1} for name, mode in arms
    ]}}}}  # fmt: skip


async def _start(start_rig: StartRig, tmp_path: Path, **overrides: Any) -> Rig:
    """The app on a YAML file it can reload (the A/B experiment), with a records database."""
    config = tmp_path / "voiceagent.yaml"
    config.write_text(
        yaml.safe_dump(_experiment([("A", "realtime-passthrough"), ("B", "relay-router")]))
    )
    return await start_rig(config=config, records=True, **overrides)


async def _post(rig: Rig, path: str, **kw: Any) -> tuple[int, Any]:
    """POST to the app: status and body (JSON when it is JSON)."""
    async with rig.http.post(rig.base_url + path, **kw) as resp:
        json = resp.content_type == "application/json"
        return resp.status, await (resp.json() if json else resp.text())


async def test_metrics_scrape_shows_a_call_fed_through_the_app_sink(
    start_rig: StartRig, tmp_path: Path
) -> None:
    """A call given to the app's sink shows in `/metrics` and is recorded in the database."""
    rig = await _start(start_rig, tmp_path)
    services = rig.services
    call = CallSession("CA1", NUMBER, "relay-router", arm="B", experiment="modes", started=0.0)
    services.sink.call_started(call)
    for start in (0.0, 4.0):
        turn = call.latency.start_turn(start, "greeting" if start == 0 else "turn")
        call.latency.upstream_byte(start + 0.5)
        call.latency.audio_out(start + 0.6)
        services.sink.turn_finished(call, turn)
    call.end(EndReason.CALLER_HANGUP, now=9.0)
    await services.finish_call(call)
    async with rig.http.get(rig.base_url + "/metrics") as resp:
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
    recorder = next(s for s in rig.calls.inner.sinks if isinstance(s, RecordingSink))  # type: ignore[attr-defined]
    await recorder.drained()
    async with recorder.engine.connect() as conn:
        assert (await conn.execute(select(calls.c.end_reason))).scalars().all() == ["caller_hangup"]
        assert len((await conn.execute(select(turns))).all()) == 2


async def test_reload_is_disabled_without_admin_token(start_rig: StartRig, tmp_path: Path) -> None:
    """With ADMIN_TOKEN empty, /admin/reload does not exist (404), whatever is sent."""
    rig = await _start(start_rig, tmp_path)
    status, _ = await _post(rig, "/admin/reload", headers={"Authorization": "Bearer "})
    assert status == 404


async def test_reload_needs_the_bearer_token(start_rig: StartRig, tmp_path: Path) -> None:
    """A missing or wrong token is refused with 401 and the config version does not move."""
    rig = await _start(start_rig, tmp_path, admin_token=ADMIN)
    assert (await _post(rig, "/admin/reload"))[0] == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert (await _post(rig, "/admin/reload", headers=wrong))[0] == 401
    assert rig.services.config.version == 1


async def test_reload_answers_new_version_or_the_config_error(
    start_rig: StartRig, tmp_path: Path
) -> None:
    """A good file bumps the version; a bad one gets 400 with its YAML path and changes nothing."""
    rig = await _start(start_rig, tmp_path, admin_token=ADMIN)
    auth = {"Authorization": f"Bearer {ADMIN}"}
    assert await _post(rig, "/admin/reload", headers=auth) == (200, {"config_version": 2})
    (tmp_path / "voiceagent.yaml").write_text(
        "numbers:\n  '+18005550103': {mode: carrier-pigeon}\n"
    )
    status, body = await _post(rig, "/admin/reload", headers=auth)
    assert status == 400 and body["path"] == "numbers.+18005550103.mode"
    assert rig.services.config.version == 2


async def test_reload_between_voice_and_stream_start_keeps_the_call_arm(
    start_rig: StartRig, tmp_path: Path
) -> None:
    """A call answered before a reload keeps its arm and mode; calls after it use the new config."""
    rig = await _start(start_rig, tmp_path, admin_token=ADMIN)
    services = rig.services
    form = {"CallSid": "CA" + "7" * 32, "To": NUMBER, "From": "+14155550100"}
    _, twiml = await rig.post_signed("/voice", form)
    [given] = re.findall(r'<Parameter name="arm" value="([^"]+)"', twiml)
    new_arm, new_mode = {"A": ("C", "relay-router"), "B": ("D", "realtime-passthrough")}[given]
    new_arms = [(new_arm, new_mode), (new_arm + "2", new_mode)]  # the given arm is gone
    (tmp_path / "voiceagent.yaml").write_text(yaml.safe_dump(_experiment(new_arms)))
    auth = {"Authorization": f"Bearer {ADMIN}"}
    assert (await _post(rig, "/admin/reload", headers=auth))[0] == 200
    kept = await services.plan_for_call(form["CallSid"], NUMBER)
    assert kept is not None and kept.arm == given
    assert kept.mode == ("realtime-passthrough" if given == "A" else "relay-router")
    fresh = await services.plan_for_call("CA" + "8" * 32, NUMBER)
    assert fresh is not None and fresh.arm in {new_arm, new_arm + "2"}
