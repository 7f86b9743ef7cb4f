"""Make the README's picture of the HTML report: `docs/report.png`, from a real rehearsal.

Runs `voiceagent simulate` (fake Inworld, simulated Twilio, the sample A/B config), opens the
report whose path it prints last in headless Chromium, and captures the A/B number's section
(table, verdicts, charts; not the slowest calls below them).

Run: `.venv/bin/python scripts/report_screenshot.py [--calls 60] [--seed 2] [-o docs/report.png]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import subprocess
import sys
from pathlib import Path

from voiceagent.report.browser import chromium

SECTION_JS = """(() => {
  const section = document.querySelector('section.number');
  const grid = section.querySelector('.grid').getBoundingClientRect();
  return {y: 0, height: Math.ceil(grid.bottom + window.scrollY + 12)};
})()"""


def simulate(calls: int, seed: int) -> Path:
    """Run the rehearsal; the report's path (its last line)."""
    proc = subprocess.run(
        [sys.executable, "-m", "voiceagent", "simulate", "--calls", str(calls),
         "--seed", str(seed), "--no-outbound"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return Path(proc.stdout.rstrip("\n").splitlines()[-1])


async def capture(report: Path, width: int) -> bytes:
    """The PNG of the report's first number section."""
    async with chromium(width=width, height=900) as page:
        await page.goto(report.as_uri())
        assert not page.errors, page.errors
        box = await page.evaluate(SECTION_JS)
        clip = {"x": 0, "y": box["y"], "width": width, "height": box["height"], "scale": 1}
        shot = await page.send("Page.captureScreenshot", {"format": "png", "clip": clip,
                               "captureBeyondViewport": True})  # fmt: skip
    return base64.b64decode(shot["data"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=60)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/report.png"))
    args = parser.parse_args()
    report = simulate(args.calls, args.seed)
    png = asyncio.run(capture(report, args.width))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(png)
    print(f"{args.output} ({len(png) // 1024} KiB) from {report}")
