"""`voiceagent experiments` and the dashboard's experiments section, from records of calls
served by the real server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import yaml

from tests.cli_process import run_cli
from tests.report.conftest import place_calls
from tests.report.test_dashboard import ADMIN, _recorded
from tests.rig import EXPERIMENT, StartRig, rig_config_data
from voiceagent.report.browser import Page


def _experiment(data: dict[str, Any]) -> dict[str, Any]:
    [experiment] = [x for x in data["experiments"] if x["number"] == EXPERIMENT]
    return experiment


async def test_experiments_command_lists_state_arms_and_calls_needed(
    start_rig: StartRig, tmp_path: Path
) -> None:
    """After calls through the server, `voiceagent experiments` names the experiment, its
    state, each arm with its weight, calls and what it changes, the verdicts, the calls still
    needed and the method; `--json` carries the same."""
    config = tmp_path / "numbers.yaml"
    config.write_text(yaml.safe_dump(rig_config_data()), encoding="utf-8")
    rig = await start_rig(config=config, records=True)
    await place_calls(rig)
    await rig.stop()  # flushes the records
    args = ["--config", str(config), "--database-url", rig.settings.database_url]
    code, out, err = await run_cli("experiments", *args)
    assert code == 0, err
    assert f"{EXPERIMENT} experiment modes: COLLECTING: collecting: no verdict yet" in out
    assert "arm realtime (weight 1, 3 calls): mode: realtime-passthrough" in out
    assert "arm relay (weight 1, 3 calls): mode: relay-router" in out
    assert "response: not enough data to name a winner" in out
    assert "calls needed: about 2 more per arm" in out
    assert "calls per arm match the config's weights" in out
    assert "verdicts: always-valid confidence sequences" in out
    code, out, err = await run_cli("experiments", *args, "--json")
    assert code == 0, err
    data = json.loads(out)
    experiment = _experiment(data)
    assert experiment["state"] == "collecting" and experiment["calls_needed"] == 2
    assert [a["calls"] for a in experiment["arms"]] == [3, 3]
    assert data["method"].startswith("always-valid")


async def test_experiments_command_says_when_there_are_no_records(tmp_path: Path) -> None:
    """Without a records file the command says so in one line and fails."""
    config = tmp_path / "numbers.yaml"
    config.write_text(yaml.safe_dump(rig_config_data()), encoding="utf-8")
    missing = f"sqlite+aiosqlite:///{tmp_path / 'none.sqlite3'}"
    code, out, err = await run_cli("experiments", "--config", str(config),
                                   "--database-url", missing)  # fmt: skip
    assert code == 1 and out == "" and "no records yet" in err


async def test_dashboard_shows_the_experiments_at_the_top(start_rig: StartRig, page: Page) -> None:
    """The dashboard's data and page carry the same experiments list, above the numbers: the
    state, the arms with their calls, the calls needed and the verdicts' method."""
    rig = await start_rig(admin_token=ADMIN, records=True)
    finished = await place_calls(rig)
    data = await _recorded(rig, len(finished))
    experiment = _experiment(data)
    assert experiment["state"] == "collecting" and experiment["calls_needed"] == 2
    assert {a["name"]: a["calls"] for a in experiment["arms"]} == {"realtime": 3, "relay": 3}

    await page.goto(rig.base_url + "/dashboard")
    page.errors.clear()  # the sign-in page's 401
    await page.evaluate(f"document.querySelector('input[name=token]').value = '{ADMIN}'")
    submitted = asyncio.create_task(page.wait_loaded())
    await page.evaluate("document.forms[0].submit()")
    await submitted
    order = await page.evaluate("[...document.body.querySelectorAll('section, main')]"
                                ".map((e) => e.id).filter(Boolean)")  # fmt: skip
    assert order.index("experiments") < order.index("numbers")
    top = await page.evaluate("document.getElementById('experiments').textContent")
    assert f"{EXPERIMENT} · modes: collecting" in top
    assert "arm realtime (weight 1, 3 calls): mode: realtime-passthrough" in top
    assert "calls needed: about 2 more per arm" in top
    assert "verdicts: always-valid confidence sequences" in top
