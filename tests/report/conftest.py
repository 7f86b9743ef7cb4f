"""Fixtures of the report tests: a headless Chromium tab, and records of simulated calls made
through the real server (the shared rig) for the pages to draw."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.rig import EXPERIMENT, REALTIME_B, RELAY, Rig
from voiceagent.report.browser import Page, chromium, find_chromium
from voiceagent.sim.script import HangUp, Listen, Say, Step
from voiceagent.sim.webhooks import new_sid

# Greeting, two questions, a barge-in on the third answer: every chart gets data.
SCRIPT: list[Step] = [
    Listen(), Say("What are your opening hours?"), Listen(), Say("Can I pay by card?"),
    Listen("playing", 300), Say("Sorry, one more thing: do you deliver?"), Listen(), HangUp(),
]  # fmt: skip
PER_ARM = 3  # calls per experiment arm: with min_calls=2, min_turns=4 the page draws a CI


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    """A headless Chromium tab; skipped only where Chromium is not installed."""
    if find_chromium() is None:
        pytest.skip("chromium is not installed (`apt-get install -y chromium`; .ci/run does it)")
    async with chromium() as tab:
        yield tab


def arm_sids(rig: Rig, per_arm: int = PER_ARM) -> list[str]:
    """CallSids that put `per_arm` calls in each arm of the rig's EXPERIMENT number."""
    config, picked = rig.services.config.current, dict[str, list[str]]()
    while len(picked) < 2 or any(len(s) < per_arm for s in picked.values()):
        sid = new_sid("CA")
        plan = config.plan_for(EXPERIMENT, sid)
        assert plan is not None and plan.arm is not None
        if len(picked.setdefault(plan.arm, [])) < per_arm:
            picked[plan.arm].append(sid)
    return [sid for sids in picked.values() for sid in sids]


async def place_calls(rig: Rig) -> list[Any]:
    """The experiment's calls, two realtime calls with transcripts and a relay call, at once."""
    calls = [(EXPERIMENT, sid) for sid in arm_sids(rig)]
    calls += [(REALTIME_B, new_sid("CA")), (REALTIME_B, new_sid("CA")), (RELAY, new_sid("CA"))]
    records = await asyncio.gather(*(rig.place_call(to, SCRIPT, call_sid=sid)
                                     for to, sid in calls))  # fmt: skip
    assert all(r.protocol is not None for r in records), records
    return records


async def assert_charts_drawn(tab: Page) -> list[dict[str, Any]]:
    """The page rendered without errors and every chart drew data inside its plot area."""
    state = await tab.evaluate("window.voiceagentReport")
    assert state["ready"] and state["error"] is None, state
    assert tab.errors == []
    charts = await tab.charts()
    assert charts and len(charts) == len(state["charts"])
    for chart in charts:
        assert chart["inside"] > 0 and chart["coloured"] > 0, chart
    return charts
