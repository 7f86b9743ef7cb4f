""" "Tell me what is wrong", through the real CLI and a real `voiceagent serve` process:
check-config's full report, serve's refusals and warnings, a rejected signature's log line,
and `voiceagent sign`."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from voiceagent import __version__

NUMBER = "+18005550101"
PUBLIC = "https://voice.example.test"
TOKEN = "operator-test-token"
ROOT = Path(__file__).resolve().parents[2]
BAD_CONFIG = """\
defaults:
  agent:
    temperature: 5
    voce: Clive
numbers:
  +14155550123:
    mode: realtime-passthrough
  "4155550199":
    mode: relay-router
  "+14155550124":
    mode: bogus
    agent:
      tools:
        - name: transfer_call
          destinations:
            sales: {number: "4155550100"}
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment for the CLI: no inherited settings, a valid config of one number."""
    config = tmp_path / "voiceagent.yaml"
    if not config.exists():
        config.write_text(yaml.safe_dump({"numbers": {NUMBER: {"mode": "relay-router"}}}))
    inherited = {k: os.environ[k] for k in ("PATH", "SYSTEMROOT") if k in os.environ}
    return inherited | {
        "PYTHONPATH": str(ROOT), "VOICEAGENT_CONFIG": str(config), "HOST": "127.0.0.1",
        "PUBLIC_URL": PUBLIC, "TWILIO_AUTH_TOKEN": TOKEN, "INWORLD_API_KEY": "test-key",
        "LOG_FORMAT": "json", "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'r.sqlite3'}",
    } | extra  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _cli(tmp_path: Path, *args: str, **env: str) -> tuple[int, str, str]:
    """Run `voiceagent ARGS` in tmp_path (no `.env` there) with `_env`."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voiceagent", *args, env=_env(tmp_path, **env), cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_check_config_reports_every_problem_with_file_line_and_hints(
    tmp_path: Path,
) -> None:
    """All six problems of one file come in one run, each `file:line: path: message`."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_CONFIG)
    code, out, err = await _cli(tmp_path, "check-config", str(bad))
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert lines[0] == f"invalid config: {bad}: 6 problems"
    assert (
        f"  {bad}:3: defaults.agent.temperature: Input should be less than or equal to 2" in lines
    )
    assert f"  {bad}:4: defaults.agent.voce: unknown key" in lines
    assert any(
        line.startswith(f"  {bad}:6: numbers.+14155550123: YAML reads the unquoted key")
        and 'quote it, "+14155550123":' in line
        for line in lines
    )
    e164 = "is not an E.164 number: '+', the country code, then the number, digits only"
    assert any(f"{bad}:8: numbers.4155550199: '4155550199' {e164}" in line for line in lines)
    assert any(
        f"{bad}:16: numbers.+14155550124.agent.tools.0.destinations.sales.number: "
        f"'4155550100' {e164}" in line
        for line in lines
    )


async def test_check_config_json_prints_errors_on_stdout(tmp_path: Path) -> None:
    """`--json` puts every error (path, message, line) on stdout, for a bad value or bad YAML."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_CONFIG)
    code, out, _ = await _cli(tmp_path, "check-config", str(bad), "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False and report["path"] == str(bad)
    assert [e["line"] for e in report["errors"]] == [3, 4, 6, 8, 11, 16]
    broken = tmp_path / "broken.yaml"
    broken.write_text(f'numbers:\n  "{NUMBER}":\n    mode: [realtime\n')
    code, out, _ = await _cli(tmp_path, "check-config", str(broken), "--json")
    (error,) = json.loads(out)["errors"]
    assert code == 1 and error["line"] == 4 and error["message"].startswith("invalid YAML")
    code, _, err = await _cli(tmp_path, "check-config", str(broken))
    assert f"{broken}:4: invalid YAML" in err and "<unicode string>" not in err


async def test_help_lists_every_command_and_version_and_serve_options(tmp_path: Path) -> None:
    """`--help` names every command (reload and sign too), `--version` the version, and
    `serve --help` explains --port and --host."""
    code, out, _ = await _cli(tmp_path, "--help")
    assert code == 0
    for command in ("serve", "check-config", "simulate", "report", "reload", "sign"):
        assert f"\n    {command} " in out or f"\n    {command}\n" in out, command
    code, out, _ = await _cli(tmp_path, "--version")
    assert (code, out.strip()) == (0, f"voiceagent {__version__}")
    code, out, _ = await _cli(tmp_path, "serve", "--help")
    assert "--port PORT  listen on this port instead of PORT" in out and "--host HOST" in out


async def test_serve_refuses_an_empty_inworld_key_in_one_line(tmp_path: Path) -> None:
    """An empty INWORLD_API_KEY stops `serve` before it listens, naming it, without traceback."""
    code, _, err = await _cli(tmp_path, "serve", "--port", "0", INWORLD_API_KEY="")
    assert code != 0 and "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith("cannot serve: INWORLD_API_KEY: is empty")


async def test_serve_reports_a_port_in_use_in_one_line(tmp_path: Path) -> None:
    """A port another process holds is one line naming the address and PORT, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = await _cli(tmp_path, "serve", "--port", str(port))
    assert code != 0 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"cannot serve: PORT: 127.0.0.1:{port} is already in use (another voiceagent or server "
        "is listening there); stop it or choose another PORT"
    )


@asynccontextmanager
async def _server(tmp_path: Path, **env: str) -> AsyncIterator[tuple[str, asyncio.StreamReader]]:
    """A `voiceagent serve` process on a free port: its base URL and its stderr (JSON logs)."""
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voiceagent", "serve", env=_env(tmp_path, PORT=str(port), **env),
        cwd=tmp_path, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        yield f"http://127.0.0.1:{port}", proc.stderr
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)


async def _next_event(stream: asyncio.StreamReader, event: str) -> dict[str, Any]:
    """The next JSON log line carrying `event` (other lines are skipped)."""
    while True:
        line = await asyncio.wait_for(stream.readline(), 60)
        assert line, f"server exited before logging {event}"
        if line.startswith(b"{") and (record := json.loads(line)).get("event") == event:
            return record  # type: ignore[no-any-return]


async def test_http_public_url_is_warned_about_loudly(tmp_path: Path) -> None:
    """An http:// PUBLIC_URL starts the server but prints and logs a warning saying why."""
    async with _server(tmp_path, PUBLIC_URL="http://voice.example.test") as (_, stderr):
        lines = []
        while not lines or '"server_started"' not in lines[-1]:
            lines.append((await asyncio.wait_for(stderr.readline(), 60)).decode())
            assert lines[-1], "server exited before it started"
    warning = "PUBLIC_URL is http://voice.example.test: Twilio calls webhooks only over https://"
    assert any(line.startswith("WARNING: " + warning) for line in lines)
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(warning in r.get("warning", "") for r in logged if r["event"] == "serving_warning")


async def test_sign_sends_a_webhook_the_server_accepts_and_rejections_are_explained(
    tmp_path: Path,
) -> None:
    """`voiceagent sign` gets TwiML from a real server; with another token it gets 403, and the
    server logs the URL it checked and the forwarding headers, never the token."""
    async with _server(tmp_path) as (base, stderr):
        await _next_event(stderr, "server_started")
        code, out, err = await _cli(tmp_path, "sign", "--url", base)
        assert code == 0, err
        assert f"POST {PUBLIC}/voice (sent to {base}/voice), To={NUMBER}" in out
        assert "\n200\n" in out and "<Connect" in out
        code, out, err = await _cli(tmp_path, "sign", "--url", base, TWILIO_AUTH_TOKEN="wrong")
        assert code == 1 and "\n403\n" in out and "signature_rejected" in err
        rejected = await _next_event(stderr, "signature_rejected")
        assert rejected["checked_url"] == f"{PUBLIC}/voice" and rejected["has_signature"] is True
        headers = {
            "X-Forwarded-Proto": "http", "X-Forwarded-Host": "tunnel.example.test",
            "Forwarded": "for=203.0.113.9;proto=http", "X-Twilio-Signature": "bogus",
        }  # fmt: skip
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{base}/voice?x=1", data={"To": NUMBER}, headers=headers) as r,
        ):
            assert r.status == 403
        rejected = await _next_event(stderr, "signature_rejected")
    assert rejected["checked_url"] == f"{PUBLIC}/voice?x=1"
    assert rejected["x_forwarded_proto"] == "http"
    assert rejected["x_forwarded_host"] == "tunnel.example.test"
    assert rejected["forwarded"] == "proto=http" and "203.0.113.9" not in json.dumps(rejected)
    assert TOKEN not in json.dumps(rejected) and "bogus" not in json.dumps(rejected)


async def test_bad_settings_are_one_report_in_every_command(tmp_path: Path) -> None:
    """A bad environment value stops any command with every bad variable and its form."""
    for args in (("check-config",), ("serve",)):
        code, _, err = await _cli(tmp_path, *args, PORT="eighty", METRICS_PORT="-1")
        assert code != 0 and "Traceback" not in err, args
        assert err.startswith("invalid configuration: PORT: ") and "(got 'eighty')" in err
        assert "expected an integer from 0 to 65535" in err and "\n  METRICS_PORT: " in err


async def test_report_rejects_a_number_without_plus_with_the_one_e164_message(
    tmp_path: Path,
) -> None:
    """`report --number 4155550123` is refused with the E.164 message, not "no calls yet"."""
    code, out, err = await _cli(tmp_path, "report", "--number", "4155550123")
    assert (code, out) == (2, "")
    assert err.strip() == (
        "--number: '4155550123' is not an E.164 number: '+', the country code, then the "
        "number, digits only (like +14155550100)"
    )
