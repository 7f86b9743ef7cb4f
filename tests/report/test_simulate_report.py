"""`voiceagent simulate` ends with the HTML report's path; `voiceagent report --format html`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_process import run_cli
from tests.report.conftest import assert_charts_drawn
from voiceagent.report.browser import Page
from voiceagent.sim.rehearsal import SAMPLE


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """One `voiceagent simulate` run (its work directory under a tmp dir): its output and
    the path on its last line."""
    tmp = tmp_path_factory.mktemp("simulate")
    proc = subprocess.run(
        [sys.executable, "-m", "voiceagent", "simulate", "--calls", "10", "--seed", "3",
         "--no-tools", "--no-outbound"],
        capture_output=True, text=True, timeout=180, check=False,
        env={**os.environ, "TMPDIR": str(tmp)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, Path(proc.stdout.rstrip("\n").splitlines()[-1])


async def test_simulate_writes_the_html_report_next_to_its_records(
    simulated: tuple[str, Path], page: Page
) -> None:
    """The last line is the report's path, beside the records database; the page draws the
    rehearsal's calls in Chromium without errors, under a banner saying they are simulated."""
    out, report = simulated
    records = re.search(r"records: sqlite\+aiosqlite:///(\S+)", out)
    assert records is not None and report.name == "report.html"
    assert report.parent == Path(records[1]).parent and report.exists()
    await page.goto(report.as_uri())
    await assert_charts_drawn(page)
    summary = await page.evaluate("document.getElementById('summary').textContent")
    assert "11 calls" in summary  # the ten, and the webhooks rehearsal's call
    banner = await page.evaluate("document.getElementById('banner').textContent")
    assert banner.startswith("SIMULATED: these records come from `voiceagent simulate`")


async def test_report_command_writes_html_to_a_file(
    simulated: tuple[str, Path], tmp_path: Path
) -> None:
    """`report --format html -o FILE` writes the page (naming what each arm changes, from
    --config) and prints the file's path."""
    out, _ = simulated
    records = re.search(r"records: (\S+)", out)
    assert records is not None
    target = tmp_path / "ab.html"
    args = ["--format", "html", "-o", str(target), "--database-url", records[1]]
    code, stdout, stderr = await run_cli("report", *args, "--config", str(SAMPLE))
    assert code == 0, stderr
    assert stdout.strip() == str(target.resolve())
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "agent.voice: Dennis (number: Clive)" in page
