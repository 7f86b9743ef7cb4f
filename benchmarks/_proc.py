"""What the benchmark scripts read of a server subprocess: health, CPU time, memory."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp


async def wait_healthy(base: str) -> None:
    """Wait (up to 10 s) until `GET base/healthz` answers 200."""
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(base + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("server did not become healthy")


def _stat_cpu_seconds(stat: Path) -> float:
    """User + system CPU seconds of a /proc `stat` file."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat"))


def main_thread_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the main thread of process `pid` so far."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/task/{pid}/stat"))


def status_kb(pid: int, key: str) -> int:
    """A kB figure of /proc/<pid>/status, e.g. VmHWM (peak RSS) or VmRSS."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def start_fake_router(
    api_key: str, ttfb: float, sentence: float
) -> tuple[subprocess.Popen[str], str]:
    """The fake Router as a subprocess (50 ms of audio per character); its process and URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "voiceagent.sim.fake_router", "--api-key", api_key,
         "--ttfb", str(ttfb), "--sentence", str(sentence), "--ms-per-char", "50"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()
