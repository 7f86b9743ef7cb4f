"""Issue 9 through the real wire: what a caller, a replayed or forged request can open or leak.

Requests are signed like the simulated Twilio signs them (`compute_signature` over the public
URL); calls in flight are real Media Streams against the fake Inworld Realtime server.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
import yaml
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from voiceagent.app import create_app
from voiceagent.config import Config, parse_config
from voiceagent.errors import ConfigError
from voiceagent.logging import clip, mask_number
from voiceagent.protocols.signature import compute_signature
from voiceagent.settings import Settings
from voiceagent.sim.fake_inworld_realtime import FakeInworldRealtime
from voiceagent.sim.fake_options import FakeRealtimeOptions
from voiceagent.web.admin import metrics_app

PUBLIC = "https://voice.example.test"
TOKEN = "test-auth-token"
NUMBER = "+18005550101"
CALLER = "+14155550100"
SID = "CA" + "1" * 32
CONFIG = parse_config({"numbers": {NUMBER: {"mode": "realtime-passthrough"}}})
OPEN_CONFIG = parse_config(
    {
        "unknown_numbers": {"policy": "default_agent"},
        "numbers": {NUMBER: {"mode": "realtime-passthrough"}},
    }
)


# -- tiny local helpers (signed webhooks, a Media Stream held open, metrics, a CLI server) ----


def _form(call_sid: str = SID, to: str = NUMBER, **extra: str) -> dict[str, str]:
    return {
        "CallSid": call_sid, "AccountSid": "AC" + "2" * 32, "From": CALLER, "To": to,
        "CallStatus": "ringing", "ApiVersion": "2010-04-01", "Direction": "inbound", **extra,
    }  # fmt: skip


async def _post(client: TestClient, path: str, form: dict[str, str], sign: bool = True) -> Any:
    """POST a form webhook to `path` (raw path and query), signed over the public URL."""
    headers = {"X-Twilio-Signature": compute_signature(TOKEN, PUBLIC + path, form)} if sign else {}
    return await client.post(path, data=form, headers=headers)


async def _client(aiohttp_client: Any, config: Config = CONFIG, **overrides: Any) -> TestClient:
    values: dict[str, Any] = {"public_url": PUBLIC, "twilio_auth_token": TOKEN,
                              "database_url": ""} | overrides  # fmt: skip
    return await aiohttp_client(create_app(Settings(**values), config))  # type: ignore[no-any-return]


async def _refused(client: TestClient, reason: str) -> float:
    text = await (await client.get("/metrics")).text()
    return _sample(text, "voiceagent_calls_refused_total", reason=reason)


def _sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return 0.0


@asynccontextmanager
async def _stream_call(client: TestClient, call_sid: str, to: str = NUMBER) -> AsyncIterator[str]:
    """Answer a call through `/voice`, open its signed Media Stream and send `start` with the
    TwiML's `<Parameter>`s; yields the TwiML once the server counts the call in flight."""
    resp = await _post(client, "/voice", _form(call_sid, to))
    twiml = await resp.text()
    assert resp.status == 200, twiml
    stream = ET.fromstring(twiml).find(".//Stream")
    assert stream is not None, twiml
    url = stream.attrib["url"]
    params = {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}
    headers = {"x-twilio-signature": compute_signature(TOKEN, url)}
    ws = await client.ws_connect(url.removeprefix(PUBLIC.replace("https", "wss")), headers=headers)
    stream_sid = "MZ" + call_sid[2:]
    media_format = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    start = {"event": "start", "sequenceNumber": "1", "streamSid": stream_sid, "start": {
        "accountSid": "AC" + "2" * 32, "streamSid": stream_sid, "callSid": call_sid,
        "tracks": ["inbound"], "customParameters": params, "mediaFormat": media_format,
    }}  # fmt: skip
    try:
        await ws.send_str('{"event": "connected", "protocol": "Call", "version": "1.0.0"}')
        await ws.send_str(json.dumps(start))
        await _until_active(client, 1)
        yield twiml
    finally:
        if not ws.closed:
            stop = {"accountSid": "AC" + "2" * 32, "callSid": call_sid}
            await ws.send_str(json.dumps(
                {"event": "stop", "sequenceNumber": "2", "streamSid": stream_sid, "stop": stop}
            ))  # fmt: skip
            await ws.close()
        await _until_active(client, 0)


async def _until_active(client: TestClient, calls: int) -> None:
    for _ in range(500):
        if (await (await client.get("/healthz")).json())["active_calls"] == calls:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never {calls} active calls")


@pytest.fixture
async def fake_inworld() -> AsyncIterator[FakeInworldRealtime]:
    async with FakeInworldRealtime(FakeRealtimeOptions(first_delta_delay_s=0.02)) as fake:
        yield fake


def _inworld(fake: FakeInworldRealtime) -> dict[str, Any]:
    return {"inworld_api_key": fake.options.api_key, "inworld_realtime_url": fake.url}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_env(tmp_path: Path, **env: str) -> dict[str, str]:
    config = tmp_path / "voiceagent.yaml"
    config.write_text(yaml.safe_dump({"numbers": {NUMBER: {"mode": "realtime-passthrough"}}}))
    inherited = {k: os.environ[k] for k in ("PATH", "PYTHONPATH") if k in os.environ}
    base = inherited | {"PUBLIC_URL": PUBLIC, "HOST": "127.0.0.1",
            "VOICEAGENT_CONFIG": str(config), "LOG_FORMAT": "json",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'records.sqlite3'}"}  # fmt: skip
    return base | env


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


async def test_over_the_cap_voice_answers_503_and_counts_it(
    aiohttp_client: Any, fake_inworld: FakeInworldRealtime
) -> None:
    """With MAX_CONCURRENT_CALLS calls in flight, /voice answers 503 and counts an overload."""
    client = await _client(aiohttp_client, max_concurrent_calls=1, **_inworld(fake_inworld))
    async with _stream_call(client, "CA" + "a" * 32):
        resp = await _post(client, "/voice", _form("CA" + "b" * 32))
        assert resp.status == 503
        assert await _refused(client, "overload") == 1
    assert (await _post(client, "/voice", _form("CA" + "c" * 32))).status == 200


async def test_over_the_cap_busy_policy_says_the_message_and_hangs_up(
    aiohttp_client: Any, fake_inworld: FakeInworldRealtime
) -> None:
    """With OVERLOAD_POLICY=busy, a call over the cap hears OVERLOAD_MESSAGE, then hang-up."""
    client = await _client(
        aiohttp_client, max_concurrent_calls=1, overload_policy="busy",
        overload_message="All lines are busy.", **_inworld(fake_inworld),
    )  # fmt: skip
    async with _stream_call(client, "CA" + "a" * 32):
        resp = await _post(client, "/voice", _form("CA" + "b" * 32))
        body = await resp.text()
    assert resp.status == 200 and "<Say>All lines are busy.</Say><Hangup />" in body
    assert await _refused(client, "overload") == 1


async def test_draining_and_unknown_number_refusals_are_counted(aiohttp_client: Any) -> None:
    """Refusals while draining and for unknown numbers are counted under their own reason."""
    client = await _client(aiohttp_client)
    assert (await _post(client, "/voice", _form(to="+15550009999"))).status == 200
    assert await _refused(client, "unknown_number") == 1
    from voiceagent.web.keys import SERVICES

    client.server.app[SERVICES].calls.draining = True
    assert (await _post(client, "/voice", _form())).status == 503
    assert await _refused(client, "draining") == 1
    assert await _refused(client, "overload") == 0


# -- 4. labels, logs, the internal metrics listener ----------------------------------------------


async def test_unconfigured_numbers_never_become_metric_labels(
    aiohttp_client: Any, fake_inworld: FakeInworldRealtime
) -> None:
    """Calls to numbers the config does not name (default_agent) are all labelled `other`."""
    client = await _client(aiohttp_client, OPEN_CONFIG, **_inworld(fake_inworld))
    for i in range(3):
        async with _stream_call(client, f"CA{i:032x}", to=f"+1555000{i:04d}"):
            pass
    text = await (await client.get("/metrics")).text()
    assert "+1555000" not in text
    ended = sum(
        s.value for f in text_string_to_metric_families(text) for s in f.samples
        if s.name == "voiceagent_calls_total" and s.labels["number"] == "other"
    )  # fmt: skip
    assert ended == 3


async def test_malformed_callsid_gets_400_and_huge_fields_stay_out_of_logs(
    aiohttp_client: Any,
) -> None:
    """A bad CallSid is a 400; a 900 kB CallSid, signed or not, logs at most a short prefix."""
    client = await _client(aiohttp_client)
    huge = "CA" + "9" * 900_000
    with structlog.testing.capture_logs() as logs:
        assert (await _post(client, "/voice", _form("CA123"))).status == 400
        assert (await _post(client, "/voice", _form(huge))).status == 400
        assert (await _post(client, "/voice", _form(huge), sign=False)).status == 403
        assert (await _post(client, "/voice/action?mode=relay-router", _form(huge))).status == 400
    assert logs, "the refusals are logged"
    longest = max(len(str(v)) for line in logs for v in line.values())
    assert longest < 200


async def test_callers_number_is_masked_in_logs(aiohttp_client: Any) -> None:
    """The caller's number (`From`) is logged as its last 4 digits only."""
    client = await _client(aiohttp_client)
    with structlog.testing.capture_logs() as logs:
        assert (await _post(client, "/voice", _form())).status == 200
    answered = next(line for line in logs if line["event"] == "call_answered")
    assert answered["caller"] == "***0100"
    assert CALLER not in json.dumps(logs, default=str)


def test_mask_number_and_clip() -> None:
    """mask_number keeps the last 4 digits; clip bounds and sanitises a peer's text."""
    assert mask_number("+14155550100") == "***0100"
    assert mask_number("1234") == "****" and mask_number("") == mask_number(None) == ""
    assert clip("a\nb") == "a?b" and clip("x" * 100, 10) == "x" * 10 + "…(+90 chars)"


async def test_metrics_can_move_to_an_internal_listener(aiohttp_client: Any) -> None:
    """With METRICS_PORT set, the public app has no /metrics; the internal app serves it."""
    client = await _client(aiohttp_client, metrics_port=0)
    assert (await client.get("/metrics")).status == 404
    internal = TestServer(metrics_app(client.server.app), host="127.0.0.1")
    await internal.start_server()
    try:
        async with aiohttp.ClientSession() as http, http.get(internal.make_url("/metrics")) as r:
            assert r.status == 200 and "voiceagent_calls_refused_total" in await r.text()
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


async def test_multipart_upload_to_voice_is_a_4xx(aiohttp_client: Any) -> None:
    """A multipart POST with a file part and a forged signature to /voice is a 4xx, not a 500."""
    client = await _client(aiohttp_client)
    data = FormData()
    data.add_field("CallSid", SID)
    data.add_field("upload", b"\x00" * 1024, filename="x.bin", content_type="application/x-bin")
    resp = await client.post("/voice", data=data, headers={"X-Twilio-Signature": "forged"})
    assert 400 <= resp.status < 500


async def test_undecodable_form_body_is_a_4xx(aiohttp_client: Any) -> None:
    """A form body that is not UTF-8 is refused with a 4xx, not a 500."""
    client = await _client(aiohttp_client)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"}
    resp = await client.post("/voice", data=b"CallSid=\xff\xfe", headers=headers)
    assert 400 <= resp.status < 500


async def test_non_utf8_authorization_on_admin_reload_is_401(aiohttp_client: Any) -> None:
    """Non-UTF-8 bytes in Authorization on /admin/reload get 401, not a 500."""
    client = await _client(aiohttp_client, admin_token="secret")
    host, port = client.server.host, client.server.port
    reader, writer = await asyncio.open_connection(host, port)
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


async def test_action_url_with_percent_encoded_query_verifies(aiohttp_client: Any) -> None:
    """A correctly signed action URL with %20 in its query verifies (Twilio signs it raw)."""
    client = await _client(aiohttp_client)
    path = "/voice/action?mode=realtime-passthrough&note=a%20b"
    resp = await _post(client, path, _form(CallStatus="in-progress"))
    assert resp.status == 200, await resp.text()
