"""Headless Chromium over the DevTools protocol, to look at report pages as a browser does.

A development aid, not used by the server: the tests render the HTML report and the dashboard
with it (console errors, every chart drawn, a screenshot), `scripts/report_screenshot.py` makes
the README's picture and `benchmarks/report_render.py` times a large report. It speaks CDP over
an aiohttp WebSocket, so it needs nothing but a `chromium` binary (Debian: `apt-get install
chromium`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")
# Chart.js charts on the page: elements placed inside the plot area, and coloured pixels
# there (axes and grid lines are grey, data is coloured).
CHARTS_JS = """[...document.querySelectorAll('canvas')].map((canvas) => {
  const chart = Chart.getChart(canvas), area = chart.chartArea;
  const els = chart.data.datasets.flatMap((d, i) => chart.getDatasetMeta(i).data);
  const inside = els.filter((e) => Number.isFinite(e.x) && Number.isFinite(e.y) &&
    e.x >= area.left - 1 && e.x <= area.right + 1 && e.y >= area.top - 1 &&
    e.y <= area.bottom + 1).length;
  const ratio = window.devicePixelRatio || 1;
  const px = canvas.getContext('2d').getImageData(area.left * ratio, area.top * ratio,
    Math.max(1, area.width * ratio), Math.max(1, area.height * ratio)).data;
  let coloured = 0;
  for (let i = 0; i < px.length; i += 4) {
    const [r, g, b, a] = [px[i], px[i + 1], px[i + 2], px[i + 3]];
    if (a > 128 && Math.max(r, g, b) - Math.min(r, g, b) > 40) coloured++;
  }
  const title = canvas.closest('figure').querySelector('figcaption').textContent;
  return {id: canvas.id, title, elements: els.length, inside, coloured};
})"""


class BrowserError(RuntimeError):
    """Chromium could not be started, or a DevTools command failed."""


def find_chromium() -> str | None:
    """The Chromium binary on PATH (`CHROMIUM` overrides), or None."""
    named = os.environ.get("CHROMIUM")
    if named:
        return named
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "chrome"))), None)


class Page:
    """One tab, attached with a flat DevTools session; collects console and page errors."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._loaded = asyncio.Event()
        self.session = ""
        self.errors: list[str] = []
        self._reader = asyncio.create_task(self._read(), name="cdp-reader")

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run a DevTools command (in the tab's session once attached); its result."""
        msg_id = next(self._ids)
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        future = self._waiting[msg_id] = asyncio.get_running_loop().create_future()
        await self._ws.send_str(json.dumps(message))
        answer = await asyncio.wait_for(future, 60)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    async def _read(self) -> None:
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            future = self._waiting.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
            elif "method" in data:
                self._on_event(data["method"], data.get("params", {}))

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Page.loadEventFired":
            self._loaded.set()
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.errors.append(f"console.{params['type']}: {args}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(f"exception: {text}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")

    async def goto(self, url: str, *, headers: dict[str, str] | None = None) -> None:
        """Open `url` (with extra request headers, if given) and wait for its load event."""
        if headers is not None:
            await self.send("Network.setExtraHTTPHeaders", {"headers": headers})
        self._loaded.clear()
        answer = await self.send("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise BrowserError(f"cannot open {url}: {answer['errorText']}")
        await asyncio.wait_for(self._loaded.wait(), 60)

    async def wait_loaded(self) -> None:
        """Wait for the next load event (after a form submit or a redirect)."""
        self._loaded.clear()
        await asyncio.wait_for(self._loaded.wait(), 60)

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression (promises awaited)."""
        answer = await self.send("Runtime.evaluate", {"expression": expression,
                                 "returnByValue": True, "awaitPromise": True})  # fmt: skip
        if "exceptionDetails" in answer:
            raise BrowserError(f"{expression[:60]}…: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    async def charts(self) -> list[dict[str, Any]]:
        """Every Chart.js chart on the page: elements in its plot area and coloured pixels."""
        result: list[dict[str, Any]] = await self.evaluate(CHARTS_JS)
        return result

    async def screenshot(self, path: Path) -> Path:
        """The whole page (beyond the window) as a PNG."""
        size = (await self.send("Page.getLayoutMetrics"))["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = await self.send("Page.captureScreenshot", {"format": "png", "clip": clip,
                               "captureBeyondViewport": True})  # fmt: skip
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))
        return path

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def chromium(width: int = 1300, height: int = 900) -> AsyncIterator[Page]:
    """A headless Chromium with one tab, stopped (and its profile removed) on exit."""
    binary = find_chromium()
    if binary is None:
        raise BrowserError("no chromium on PATH (Debian: apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="voiceagent-chromium-") as profile:
        args = ["--headless", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                "--remote-debugging-port=0", f"--user-data-dir={profile}",
                f"--window-size={width},{height}", "about:blank"]  # fmt: skip
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(0, "--no-sandbox")  # Chromium's sandbox refuses to run as root
        proc = await asyncio.create_subprocess_exec(
            binary, *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        drain: asyncio.Task[None] | None = None
        try:
            async with aiohttp.ClientSession() as http:
                url = await asyncio.wait_for(_devtools_url(proc), 30)
                drain = asyncio.create_task(_drain(proc), name="chromium-stderr")
                async with http.ws_connect(url, max_msg_size=0) as ws:
                    page = Page(ws)
                    try:
                        await _attach(page)
                        yield page
                    finally:
                        await page.close()
        finally:
            if drain is not None:
                drain.cancel()
            if proc.returncode is None:
                proc.terminate()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 10)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def _devtools_url(proc: asyncio.subprocess.Process) -> str:
    assert proc.stderr is not None
    seen = []
    async for line in proc.stderr:
        text = line.decode(errors="replace")
        seen.append(text)
        match = _LISTENING.search(text)
        if match:
            return match[1]
    raise BrowserError("chromium exited before DevTools listened:\n" + "".join(seen[-20:]))


async def _drain(proc: asyncio.subprocess.Process) -> None:
    """Read (and drop) Chromium's stderr so a full pipe never blocks it."""
    assert proc.stderr is not None
    async for _ in proc.stderr:
        pass


async def _attach(page: Page) -> None:
    target = await page.send("Target.createTarget", {"url": "about:blank"})
    attached = await page.send("Target.attachToTarget",
                               {"targetId": target["targetId"], "flatten": True})  # fmt: skip
    page.session = attached["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        await page.send(f"{domain}.enable")
