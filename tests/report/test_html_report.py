"""The HTML report of records made by simulated calls through the server, in headless Chromium."""

from __future__ import annotations

from pathlib import Path

from tests.report.conftest import assert_charts_drawn, place_calls
from tests.rig import EXPERIMENT, StartRig
from voiceagent.report.browser import Page
from voiceagent.report.page import html_report


async def test_report_page_draws_every_chart_from_real_records(
    start_rig: StartRig, page: Page, tmp_path: Path
) -> None:
    """The page opens offline from a file without console errors, and draws the latency
    distributions (axes from 0), the A/B interval, outcomes and the slowest calls' turns from
    the records of real simulated calls; the experiment's state, guardrails and the verdicts'
    method are shown; percentiles over time wait for 3 minutes of data; it fetches nothing."""
    rig = await start_rig(records=True)
    await place_calls(rig)
    config = rig.services.config.current
    await rig.stop()  # flushes the records
    html = await html_report(rig.settings.database_url, config=config, min_calls=2)
    report = tmp_path / "report.html"
    report.write_text(html, encoding="utf-8")

    await page.goto(report.as_uri())
    charts = await assert_charts_drawn(page)
    titles = " | ".join(c["title"] for c in charts)
    for expected in ("A/B: difference of per-call means", "response (turn end", "greeting (call",
                     "heard (turn end", "fetch (turn end", "upstream errors by kind",
                     "how calls ended", "turns of CA"):  # fmt: skip
        assert expected in titles
    assert "p50 and p99 per minute" not in titles
    text = await page.evaluate("document.body.innerText")
    assert "drawn once there are 3 minutes with turns (1 so far)" in text
    assert "SIMULATED" not in text
    top = await page.evaluate("document.getElementById('experiments').textContent")
    state = await page.evaluate("document.querySelector('#experiments .state').textContent")
    assert f"{EXPERIMENT} · " in top and "arm " in top and "response: " in top
    assert state in (
        "collecting",
        "winner",
        "mixed",
        "no difference",
        "faster but worse",
        "mismatch",
    )
    assert "verdicts: always-valid confidence sequences" in top
    assert "guardrail (per call, always-valid 95%)" in text and "early hangups" in text
    x_min = await page.evaluate("Chart.getChart('chart-1').scales.x.min")
    assert x_min == 0
    assert EXPERIMENT in text and "mode: relay-router" in text
    assert await page.evaluate("document.querySelectorAll('ol.transcript li').length") > 0
    assert await page.evaluate("performance.getEntriesByType('resource').length") == 0
    shot = await page.screenshot(tmp_path / "report.png")
    assert shot.stat().st_size > 10_000
