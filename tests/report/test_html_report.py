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
    distributions, the A/B interval, percentiles over time, outcomes and the slowest calls'
    turns from the records of real simulated calls; it fetches nothing."""
    rig = await start_rig(records=True)
    await place_calls(rig)
    config = rig.services.config.current
    await rig.stop()  # flushes the records
    html = await html_report(rig.settings.database_url, config=config, min_turns=4, min_calls=2)
    report = tmp_path / "report.html"
    report.write_text(html, encoding="utf-8")

    await page.goto(report.as_uri())
    charts = await assert_charts_drawn(page)
    titles = " | ".join(c["title"] for c in charts)
    for expected in ("A/B: difference of medians", "response (turn end", "greeting (call",
                     "heard (turn end", "fetch (turn end", "p50 and p99 per minute",
                     "upstream errors by kind", "how calls ended", "turns of CA"):  # fmt: skip
        assert expected in titles
    text = await page.evaluate("document.body.innerText")
    assert EXPERIMENT in text and "mode: relay-router" in text
    assert await page.evaluate("document.querySelectorAll('ol.transcript li').length") > 0
    assert await page.evaluate("performance.getEntriesByType('resource').length") == 0
    shot = await page.screenshot(tmp_path / "report.png")
    assert shot.stat().st_size > 10_000
