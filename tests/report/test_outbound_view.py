"""Outbound calls on the HTML report, the dashboard and the JSON report: calls dialled through
the server (the fake Twilio REST API; callees that answer, are an answering machine, ring out
or are busy) counted per number and arm; a number that dialled nothing has no such section."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.report.conftest import assert_charts_drawn
from tests.rig import ADMIN, REALTIME_A, OutboundRig, StartRig, rig_config, running_outbound
from voiceagent.config import Config
from voiceagent.report.browser import Page
from voiceagent.report.command import load_report
from voiceagent.report.outbound import STATUSES
from voiceagent.report.page import html_report
from voiceagent.report.render import render
from voiceagent.sim.callee import Callee
from voiceagent.sim.script import HangUp, Listen
from voiceagent.store.live.outbound_state import FINAL_STATUSES
from voiceagent.store.records.schema import make_engine, outbound_calls
from voiceagent.web.dashboard import DASHBOARD

OUT_EXP = "+18005550120"  # dials out, A/B experiment: realtime vs relay by CallSid
ONLY_ROWS = "+18005550121"  # not in the config: its one outbound row is written directly
PERSON, MACHINE, NOBODY, BUSY = "+14155550001", "+14155550002", "+14155550003", "+14155550004"
CALLEES = {PERSON: Callee("person"), MACHINE: Callee("machine"), NOBODY: Callee("no-answer"),
           BUSY: Callee("busy")}  # fmt: skip
OUTCOME = {PERSON: ("completed", "human"), MACHINE: ("completed", "machine_end_beep"),
           NOBODY: ("no-answer", None), BUSY: ("busy", None)}  # fmt: skip
ARMS = ("realtime", "relay")
HOSTILE = '<img src=x onerror="window.pwned=1">'


def outbound_config() -> Config:
    arms = [{"name": "realtime", "mode": "realtime-passthrough", "weight": 1},
            {"name": "relay", "mode": "relay-router", "weight": 1}]  # fmt: skip
    return rig_config(**{OUT_EXP: {
        "experiment": {"name": "dialler", "arms": arms},
        "agent": {"greeting": "Hi, this is the clinic.", "instructions": "Remind them."},
        "outbound": {"amd": True, "voicemail": {"action": "hangup"}},
    }})  # fmt: skip


@dataclass
class Expected:
    """What one arm's outbound calls should be counted as."""

    statuses: Counter[str] = field(default_factory=Counter)
    verdicts: Counter[str] = field(default_factory=Counter)

    @property
    def dialled(self) -> int:
        return sum(self.statuses.values())


async def dial_both_arms(out: OutboundRig, per_arm: int = 3) -> dict[str, Expected]:
    """Dial OUT_EXP (callees in turn: nobody, busy, a machine, a person) until each arm has
    `per_arm` calls (Twilio's CallSid picks the arm), then wait until the server has every
    call's final status. Per arm, what the report should count."""
    config, expected = out.rig.services.config.current, defaultdict[str, Expected](Expected)
    sids = []
    for to in itertools.islice(itertools.cycle((NOBODY, BUSY, MACHINE, PERSON)), 60):
        status, body = await out.dial(OUT_EXP, to)
        assert status == 201, body
        plan = config.plan_for(OUT_EXP, body["call_sid"])
        assert plan is not None and plan.arm in ARMS
        final, verdict = OUTCOME[to]
        expected[plan.arm].statuses[final] += 1
        if verdict is not None:
            expected[plan.arm].verdicts[verdict] += 1
        sids.append(body["call_sid"])
        if all(expected[arm].dialled >= per_arm for arm in ARMS):
            break
    for sid in sids:
        await out.callees.wait(sid)
        await out.twilio.callbacks.wait_for(
            lambda d, s=sid: d.kind == "status" and d.form.get("CallSid") == s
            and d.form.get("CallStatus") in FINAL_STATUSES
        )  # fmt: skip
    assert set(expected) == set(ARMS)
    return dict(expected)


def assert_counted(rows: list[dict[str, Any]], expected: dict[str, Expected]) -> None:
    """The page's (or JSON's) outbound rows: per arm, dialled, by status and verdict, shares."""
    assert {r["arm"] for r in rows} == set(ARMS)
    for row in rows:
        want = expected[row["arm"]]
        assert row["dialled"] == want.dialled
        assert row["statuses"] == dict(want.statuses)
        assert row["answered_by"] == dict(want.verdicts)
        assert row["no_verdict"] == want.statuses["no-answer"] + want.statuses["busy"]
        assert row["voicemail"] == want.verdicts["machine_end_beep"]
        assert row["rates"] == {
            "answered": round(want.statuses["completed"] / want.dialled, 4),
            "person": round(want.verdicts["human"] / want.dialled, 4),
            "voicemail": round(want.verdicts["machine_end_beep"] / want.dialled, 4),
        }


def page_json(page: str) -> dict[str, Any]:
    block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page)
    assert block is not None and "<" not in block[1]
    data: dict[str, Any] = json.loads(block[1])
    return data


def section(data: dict[str, Any], number: str) -> dict[str, Any]:
    (found,) = [n for n in data["numbers"] if n["number"] == number]
    return found


async def test_html_and_json_reports_count_outbound_calls_per_arm(start_rig: StartRig) -> None:
    """Calls dialled in both arms of an experiment: the HTML page's data has the number's
    outbound table (every final status as a column, the verdicts recorded) with each arm's
    counts and shares; the JSON report has the same rows; a number with inbound calls only
    has no outbound table."""
    config = outbound_config()
    async with running_outbound(start_rig, CALLEES, config=config, records=True) as out:
        expected = await dial_both_arms(out)
        inbound = await out.rig.place_call(REALTIME_A, [Listen(), HangUp()])
        assert inbound.heard_ms > 0
        database = out.rig.settings.database_url
        await out.rig.stop()  # flushes the records

    data = page_json(await html_report(database, config=config))
    table = section(data, OUT_EXP)["outbound"]
    assert table["statuses"] == list(STATUSES) and set(STATUSES) == FINAL_STATUSES
    assert table["answered_by"] == ["human", "machine_end_beep"]
    assert_counted(table["arms"], expected)
    assert section(data, REALTIME_A)["outbound"] is None
    assert data["dialled"] == sum(e.dialled for e in expected.values())

    report = await load_report(database, config=config)
    rows = json.loads(render(report, "json"))["outbound"]
    assert_counted([r for r in rows if r["number"] == OUT_EXP], expected)
    assert all(r["number"] == OUT_EXP for r in rows)


async def _dashboard_data(out: OutboundRig, dialled: int) -> dict[str, Any]:
    """`/dashboard/data` (bearer token) once `dialled` outbound calls and REALTIME_A's call
    are in the records (the writer is async)."""
    rig = out.rig
    rig.app[DASHBOARD].report_every_s = 0.0
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with asyncio.timeout(20):
        while True:
            async with rig.http.get(rig.base_url + "/dashboard/data", headers=headers) as resp:
                assert resp.status == 200
                data: dict[str, Any] = await resp.json()
            numbers = {n["number"] for n in data["numbers"]}
            if data.get("dialled", 0) >= dialled and REALTIME_A in numbers:
                return data
            await asyncio.sleep(0.2)


async def test_dashboard_counts_outbound_calls_per_arm(start_rig: StartRig) -> None:
    """The live dashboard, signed in over HTTP: its data and its page carry the number's
    outbound table per arm; the number without outbound calls has none; unsigned, nothing."""
    config = outbound_config()
    async with running_outbound(start_rig, CALLEES, config=config, records=True) as out:
        expected = await dial_both_arms(out)
        await out.rig.place_call(REALTIME_A, [Listen(), HangUp()])
        data = await _dashboard_data(out, sum(e.dialled for e in expected.values()))
        assert_counted(section(data, OUT_EXP)["outbound"]["arms"], expected)
        assert section(data, REALTIME_A)["outbound"] is None
        url = out.rig.base_url + "/dashboard"
        async with out.rig.http.get(url) as resp:
            assert resp.status == 401 and "outbound" not in await resp.text()
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with out.rig.http.get(url, headers=headers) as resp:
            page = page_json(await resp.text())
        assert_counted(section(page, OUT_EXP)["outbound"]["arms"], expected)
        assert section(page, REALTIME_A)["outbound"] is None


async def test_outbound_table_in_chromium_is_drawn_and_escaped(
    start_rig: StartRig, page: Page, tmp_path: Path
) -> None:
    """In Chromium: the outbound table under the dialling number, one row per arm with its
    counts and the share reaching voicemail; none under a number that dialled nothing; a
    number with outbound records only gets its table (no arm table, no chart notes); a hostile
    arm name from the records is shown as text, never run."""
    config = outbound_config()
    async with running_outbound(start_rig, CALLEES, config=config, records=True) as out:
        expected = await dial_both_arms(out, per_arm=2)
        await out.rig.place_call(REALTIME_A, [Listen(), HangUp()])
        database = out.rig.settings.database_url
        await out.rig.stop()
    engine = make_engine(database)
    try:
        async with engine.begin() as conn:
            await conn.execute(outbound_calls.insert().values(
                call_sid="CA" + "f" * 32, number=ONLY_ROWS, arm=HOSTILE, mode="relay-router",
                status="completed", answered_by="machine_end_beep",
                dialled_at=datetime.now(UTC)))  # fmt: skip
    finally:
        await engine.dispose()
    report = tmp_path / "report.html"
    report.write_text(await html_report(database, config=config), encoding="utf-8")

    await page.goto(report.as_uri())
    await assert_charts_drawn(page)
    tables = await page.evaluate("""[...document.querySelectorAll('section.number')].map((s) =>
      [s.querySelector('h2').textContent, s.querySelectorAll('table.arms:not(.outbound)').length,
       [...s.querySelectorAll('table.outbound tr')].map((r) =>
         [...r.children].map((c) => c.textContent)), s.innerText.includes('drawn once')])""")
    by_number = {number: (arm_tables, rows) for number, arm_tables, rows, _ in tables}
    waiting = {number: note for number, *_, note in tables}
    assert waiting[REALTIME_A] and not waiting[ONLY_ROWS]  # no turns to chart: no note either
    assert by_number[REALTIME_A][1] == []
    _, rows = by_number[OUT_EXP]
    head, body = rows[0], {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert head[:7] == ["arm", "dialled", *STATUSES]
    assert set(body) == set(ARMS)
    for arm, want in expected.items():
        n = want.dialled
        assert body[arm]["dialled"] == str(n)
        for status in STATUSES:
            count = want.statuses[status]
            assert body[arm][status] == f"{count} ({count / n * 100:.1f}%)"
        beeps = want.verdicts["machine_end_beep"]
        assert body[arm]["answered by machine_end_beep"] == f"{beeps} ({beeps / n * 100:.1f}%)"
        assert body[arm]["reached voicemail"] == f"{beeps / n * 100:.1f}%"
    arm_tables, rows = by_number[ONLY_ROWS]
    assert arm_tables == 0 and rows[1][:3] == [HOSTILE, "1", "1 (100.0%)"]
    assert await page.evaluate("document.querySelectorAll('img').length") == 0
    assert await page.evaluate("window.pwned === undefined")
    summary = await page.evaluate("document.getElementById('summary').textContent")
    assert f"{sum(e.dialled for e in expected.values()) + 1} outbound calls dialled" in summary
