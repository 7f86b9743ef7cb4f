"""Run the `voiceagent` CLI in a child process (it configures logging process-wide)."""

from __future__ import annotations

import asyncio
import sys


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`python -m voiceagent ARGS`: its exit code, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voiceagent", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()
