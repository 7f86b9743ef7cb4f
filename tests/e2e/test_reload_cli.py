"""`voiceagent reload` against a real `voiceagent serve` process: by HTTP and by SIGHUP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.cli_process import run_cli

ADMIN = "cli-admin-token-0123456789abcdef0123"
CONFIG = {"numbers": {"+18005550101": {"mode": "relay-router"}}}


async def _log_event(stream: asyncio.StreamReader, event: str) -> dict[str, Any]:
    """The next JSON log line of the server carrying `event`."""
    while True:
        line = await asyncio.wait_for(stream.readline(), 60)
        assert line, f"server exited before logging {event}"
        if line.startswith(b"{") and (record := json.loads(line)).get("event") == event:
            return record  # type: ignore[no-any-return]


async def test_reload_cli_by_http_and_by_sighup(tmp_path: Path) -> None:
    """`reload --url` answers the new version or the error; `reload --pid` reloads via SIGHUP."""
    config = tmp_path / "voiceagent.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    env = {**os.environ, "VOICEAGENT_CONFIG": str(config), "HOST": "127.0.0.1", "PORT": "0",
           "ADMIN_TOKEN": ADMIN, "LOG_FORMAT": "json", "TWILIO_AUTH_TOKEN": "test-token",
           "PUBLIC_URL": "https://voice.example.test",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'r.sqlite3'}",
           "PYTHONPATH": str(Path(__file__).parents[2])}  # fmt: skip
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voiceagent", "serve", env=env, cwd=tmp_path,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert server.stderr is not None
    try:
        started = await _log_event(server.stderr, "server_started")
        url = f"http://127.0.0.1:{started['port']}"
        code, out, _ = await run_cli("reload", "--url", url, env=env)
        assert (code, out.strip()) == (0, "config reloaded: version 2")
        assert (await _log_event(server.stderr, "config_reloaded"))["version"] == 2
        config.write_text("numbers: {'+18005550101': {mode: fax}}\n")
        code, _, err = await run_cli("reload", "--url", url, env=env)
        assert code == 1 and "reload refused (400)" in err and "numbers.+18005550101.mode" in err
        config.write_text(yaml.safe_dump(CONFIG))
        code, out, _ = await run_cli("reload", "--pid", str(server.pid), env=env)
        assert code == 0 and "sent SIGHUP" in out
        assert (await _log_event(server.stderr, "config_reloaded"))["version"] == 3
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.wait(), 60)
