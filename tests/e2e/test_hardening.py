"""Issue 9 through the real wire: what a caller, a replayed or forged request can open or leak.

The rig (tests/conftest.py) runs the app against the fake Inworld; requests are signed as the
simulated Twilio signs them, and calls in flight are simulated Media Streams calls. `voiceagent
serve` itself runs as a child process where the listener matters.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import aiohttp
import pytest
import structlog
import yaml
from aiohttp import FormData
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from tests.rig import PUBLIC, REALTIME_A, TOKEN, Rig, StartRig, webhook_form
from voiceagent.app import create_app
from voiceagent.config import parse_config
from voiceagent.errors import ConfigError
from voiceagent.logging import clip, mask_number
from voiceagent.settings import Settings
from voiceagent.sim.script import Pause
from voiceagent.web.admin import metrics_app

NUMBER = REALTIME_A
CALLER = "+14155550100"  # webhook_form's From
CONFIG = parse_config({"numbers": {NUMBER: {"mode": "realtime-passthrough"}}})
OPEN_CONFIG = parse_config(
    {
        "unknown_numbers": {"policy": "default_agent"},
        "numbers": {NUMBER: {"mode": "realtime-passthrough"}},
    }
)


# -- tiny local helpers: metrics, a call held in flight, a `voiceagent serve` process ----------


async def _metrics(rig: Rig) -> str:
    async with rig.http.get(rig.base_url + "/metrics") as resp:
        assert resp.status == 200
        return await resp.text()


async def _refused(rig: Rig, reason: str) -> float:
    return _sample(await _metrics(rig), "voiceagent_calls_refused_total", reason=reason)


def _sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return 0.0


async def _until_active(rig: Rig, calls: int) -> None:
    for _ in range(500):
        if rig.services.calls.count() == calls:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never {calls} calls in flight")


@asynccontextmanager
async def _call_in_flight(rig: Rig, to: str = NUMBER) -> AsyncIterator[None]:
    """A simulated call that stays on the line (signed /voice, Media Stream, `start` with the
    TwiML's parameters and stream token) until the block ends; then the line drops."""
    call = asyncio.create_task(rig.place_call(to, [Pause(60_000)]))
    try:
        await _until_active(rig, rig.services.calls.count() + 1)
        yield
    finally:
        call.cancel()
        with suppress(asyncio.CancelledError):
            await call
        await _until_active(rig, 0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_env(tmp_path: Path, **env: str) -> dict[str, str]:
    config = tmp_path / "voiceagent.yaml"
    config.write_text(yaml.safe_dump({"numbers": {NUMBER: {"mode": "realtime-passthrough"}}}))
    inherited = {k: os.environ[k] for k in ("PATH", "PYTHONPATH") if k in os.environ}
    return inherited | {
        "PUBLIC_URL": PUBLIC, "HOST": "127.0.0.1", "VOICEAGENT_CONFIG": str(config),
        "LOG_FORMAT": "json", "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'records.sqlite3'}",
    } | env  # fmt: skip


@asynccontextmanager
async def _serve(tmp_path: Path, **env: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m voiceagent serve` in tmp_path (no .env, no ./voiceagent.sqlite3 here)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voiceagent", "serve", env=_server_env(tmp_path, **env),
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.communicate(), 30)


async def _wait_healthy(http: aiohttp.ClientSession, url: str) -> None:
    for _ in range(300):
        try:
            async with http.get(url) as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("server never became healthy")


# -- 1. no auth token, no server ----------------------------------------------------------------


async def test_serve_without_auth_token_exits_naming_the_settings(tmp_path: Path) -> None:
    """`voiceagent serve` with an empty TWILIO_AUTH_TOKEN exits non-zero, naming the settings."""
    async with _serve(tmp_path, PORT=str(_free_port())) as proc:
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode not in (0, None)
    text = err.decode()
    assert "TWILIO_AUTH_TOKEN" in text and "VOICEAGENT_INSECURE_SKIP_SIGNATURE" in text
    assert "Traceback" not in text


def test_app_without_auth_token_is_refused_unless_insecure_on_purpose() -> None:
    """create_app raises ConfigError for an empty token, and builds with the explicit override."""
    with pytest.raises(ConfigError) as err:
        create_app(Settings(public_url=PUBLIC, database_url=""), CONFIG)
    assert "VOICEAGENT_INSECURE_SKIP_SIGNATURE" in str(err.value)
    create_app(Settings(insecure_skip_signature=True, database_url=""), CONFIG)


# -- 3. load cap ------------------------------------------------------------------------------


async def test_over_the_cap_voice_answers_503_and_counts_it(start_rig: StartRig) -> None:
    """With MAX_CONCURRENT_CALLS calls in flight, /voice answers 503 and counts an overload."""
    rig = await start_rig(max_concurrent_calls=1)
    async with _call_in_flight(rig):
        status, _ = await rig.post_signed("/voice", webhook_form(NUMBER))
        assert status == 503
        assert await _refused(rig, "overload") == 1
    assert (await rig.post_signed("/voice", webhook_form(NUMBER)))[0] == 200


async def test_over_the_cap_busy_policy_says_the_message_and_hangs_up(
    start_rig: StartRig,
) -> None:
    """With OVERLOAD_POLICY=busy, a call over the cap hears OVERLOAD_MESSAGE, then hang-up."""
    rig = await start_rig(
        max_concurrent_calls=1, overload_policy="busy", overload_message="All lines are busy."
    )
    async with _call_in_flight(rig):
        status, body = await rig.post_signed("/voice", webhook_form(NUMBER))
    assert status == 200 and "<Say>All lines are busy.</Say><Hangup />" in body
    assert await _refused(rig, "overload") == 1


async def test_draining_and_unknown_number_refusals_are_counted(start_rig: StartRig) -> None:
    """Refusals while draining and for unknown numbers are counted under their own reason."""
    rig = await start_rig(config=CONFIG)
    assert (await rig.post_signed("/voice", webhook_form("+15550009999")))[0] == 200
    assert await _refused(rig, "unknown_number") == 1
    rig.services.calls.draining = True
    assert (await rig.post_signed("/voice", webhook_form(NUMBER)))[0] == 503
    assert await _refused(rig, "draining") == 1
    assert await _refused(rig, "overload") == 0


# -- 4. labels, logs, the internal metrics listener ----------------------------------------------


async def test_unconfigured_numbers_never_become_metric_labels(start_rig: StartRig) -> None:
    """Calls to numbers the config does not name (default_agent) are all labelled `other`."""
    rig = await start_rig(config=OPEN_CONFIG)
    for i in range(3):
        record = await rig.place_call(f"+1555000{i:04d}", [Pause(100)])
        await rig.ended(record.call_sid)
    text = await _metrics(rig)
    assert "+1555000" not in text
    ended = sum(
        s.value for f in text_string_to_metric_families(text) for s in f.samples
        if s.name == "voiceagent_calls_total" and s.labels["number"] == "other"
    )  # fmt: skip
    assert ended == 3


async def test_malformed_callsid_gets_400_and_huge_fields_stay_out_of_logs(rig: Rig) -> None:
    """A bad CallSid is a 400; a 900 kB CallSid, signed or not, logs at most a short prefix."""
    huge = "CA" + "9" * 900_000
    with structlog.testing.capture_logs() as logs:
        assert (await rig.post_signed("/voice", webhook_form(NUMBER, "CA123")))[0] == 400
        assert (await rig.post_signed("/voice", webhook_form(NUMBER, huge)))[0] == 400
        unsigned = await rig.post_signed("/voice", webhook_form(NUMBER, huge), sign=False)
        assert unsigned[0] == 403
        action = "/voice/action?mode=relay-router"
        assert (await rig.post_signed(action, webhook_form(NUMBER, huge)))[0] == 400
    assert logs, "the refusals are logged"
    longest = max(len(str(v)) for line in logs for v in line.values())
    assert longest < 200


async def test_callers_number_is_masked_in_logs(rig: Rig) -> None:
    """The caller's number (`From`) is logged as its last 4 digits only."""
    with structlog.testing.capture_logs() as logs:
        assert (await rig.post_signed("/voice", webhook_form(NUMBER)))[0] == 200
    answered = next(line for line in logs if line["event"] == "call_answered")
    assert answered["caller"] == "***0100"
    assert CALLER not in json.dumps(logs, default=str)


def test_mask_number_and_clip() -> None:
    """mask_number keeps the last 4 digits; clip bounds and sanitises a peer's text."""
    assert mask_number("+14155550100") == "***0100"
    assert mask_number("1234") == "****" and mask_number("") == mask_number(None) == ""
    assert clip("a\nb") == "a?b" and clip("x" * 100, 10) == "x" * 10 + "…(+90 chars)"


async def test_metrics_can_move_to_an_internal_listener(start_rig: StartRig) -> None:
    """With METRICS_PORT set, the public app has no /metrics; the internal app serves it."""
    rig = await start_rig(metrics_port=0)
    async with rig.http.get(rig.base_url + "/metrics") as public:
        assert public.status == 404
    internal = TestServer(metrics_app(rig.app), host="127.0.0.1")
    await internal.start_server()
    try:
        async with rig.http.get(internal.make_url("/metrics")) as resp:
            assert resp.status == 200 and "voiceagent_calls_refused_total" in await resp.text()
    finally:
        await internal.close()


async def test_serve_starts_the_internal_metrics_listener(tmp_path: Path) -> None:
    """`voiceagent serve` with METRICS_PORT serves /metrics there and not on the public port."""
    port, metrics_port = _free_port(), _free_port()
    env = {"TWILIO_AUTH_TOKEN": TOKEN, "PORT": str(port), "METRICS_PORT": str(metrics_port)}
    async with _serve(tmp_path, **env), aiohttp.ClientSession() as http:
        await _wait_healthy(http, f"http://127.0.0.1:{port}/healthz")
        async with http.get(f"http://127.0.0.1:{port}/metrics") as public:
            assert public.status == 404
        async with http.get(f"http://127.0.0.1:{metrics_port}/metrics") as internal:
            assert internal.status == 200
            assert "voiceagent_active_calls" in await internal.text()


# -- 8. inputs that used to give a 500 -----------------------------------------------------------


async def test_multipart_upload_to_voice_is_a_4xx(rig: Rig) -> None:
    """A multipart POST with a file part and a forged signature to /voice is a 4xx, not a 500."""
    data = FormData()
    data.add_field("CallSid", "CA" + "1" * 32)
    data.add_field("upload", b"\x00" * 1024, filename="x.bin", content_type="application/x-bin")
    headers = {"X-Twilio-Signature": "forged"}
    async with rig.http.post(rig.base_url + "/voice", data=data, headers=headers) as resp:
        assert 400 <= resp.status < 500


async def test_undecodable_form_body_is_a_4xx(rig: Rig) -> None:
    """A form body that is not UTF-8 is refused with a 4xx, not a 500."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"}
    body = b"CallSid=\xff\xfe"
    async with rig.http.post(rig.base_url + "/voice", data=body, headers=headers) as resp:
        assert 400 <= resp.status < 500


async def test_non_utf8_authorization_on_admin_reload_is_401(start_rig: StartRig) -> None:
    """Non-UTF-8 bytes in Authorization on /admin/reload get 401, not a 500."""
    rig = await start_rig(admin_token="secret-admin-token-0123456789abcdef")
    reader, writer = await asyncio.open_connection(rig.server.host, rig.server.port)
    writer.write(
        b"POST /admin/reload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\xfd\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    assert re.match(rb"HTTP/1.1 401 ", status_line), status_line


# -- 9. the signed URL is the raw one -------------------------------------------------------------


async def test_action_url_with_percent_encoded_query_verifies(rig: Rig) -> None:
    """A correctly signed action URL with %20 in its query verifies (Twilio signs it raw)."""
    path = "/voice/action?mode=realtime-passthrough&note=a%20b"
    status, body = await rig.post_signed(path, webhook_form(NUMBER, CallStatus="in-progress"))
    assert status == 200, body
