"""The `/voice` webhook and `/healthz` through real HTTP: signatures, refusal, drain."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from voiceagent.app import create_app
from voiceagent.config import parse_config
from voiceagent.protocols.signature import compute_signature
from voiceagent.settings import Settings
from voiceagent.web.keys import SERVICES

PUBLIC = "https://voice.example.test"
TOKEN = "test-auth-token"
CONFIG = parse_config({
    "numbers": {
        "+18005550101": {"mode": "realtime-passthrough"},
        "+18005550102": {"mode": "relay-router"},
    }
})


def _form(to: str) -> dict[str, str]:
    return {"CallSid": "CA" + "1" * 32, "AccountSid": "AC" + "2" * 32, "From": "+14155550100",
            "To": to, "CallStatus": "ringing", "ApiVersion": "2010-04-01", "Direction": "inbound"}


async def _client(aiohttp_client: Any, **overrides: Any) -> TestClient:
    settings = Settings(public_url=PUBLIC, twilio_auth_token=TOKEN, **overrides)
    return await aiohttp_client(create_app(settings, CONFIG))  # type: ignore[no-any-return]


async def _post(client: TestClient, form: dict[str, str], sign: bool = True) -> Any:
    signature = compute_signature(TOKEN, PUBLIC + "/voice", form)
    headers = {"X-Twilio-Signature": signature} if sign else {}
    return await client.post("/voice", data=form, headers=headers)


async def test_unsigned_and_wrongly_signed_webhooks_get_403(aiohttp_client: Any) -> None:
    """A webhook without a signature, or signed for another URL, is refused with 403."""
    client = await _client(aiohttp_client)
    form = _form("+18005550101")
    assert (await _post(client, form, sign=False)).status == 403
    bad = compute_signature(TOKEN, "https://elsewhere.test/voice", form)
    resp = await client.post("/voice", data=form, headers={"X-Twilio-Signature": bad})
    assert resp.status == 403


async def test_unknown_number_gets_spoken_refusal(aiohttp_client: Any) -> None:
    """A call to a number missing from the config hears the refusal and is hung up."""
    client = await _client(aiohttp_client)
    resp = await _post(client, _form("+15550009999"))
    body = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/xml"
    assert "<Say>Sorry, this number is not in service. Goodbye.</Say><Hangup />" in body


async def test_each_mode_gets_its_connect_twiml(aiohttp_client: Any) -> None:
    """Realtime numbers get <Stream>, relay numbers <ConversationRelay>, both with an action."""
    client = await _client(aiohttp_client)
    stream = await (await _post(client, _form("+18005550101"))).text()
    assert '<Stream url="wss://voice.example.test/media-stream">' in stream
    assert 'action="https://voice.example.test/voice/action?mode=realtime-passthrough' in stream
    relay = await (await _post(client, _form("+18005550102"))).text()
    assert 'url="wss://voice.example.test/conversation"' in relay
    assert "?" not in stream.split('url="')[1].split('"')[0]


async def test_draining_server_answers_503_and_healthz_says_so(aiohttp_client: Any) -> None:
    """While draining, /voice answers 503 (Twilio uses the fallback URL) and /healthz too."""
    client = await _client(aiohttp_client)
    assert (await client.get("/healthz")).status == 200
    client.server.app[SERVICES].calls.draining = True
    assert (await _post(client, _form("+18005550101"))).status == 503
    health = await client.get("/healthz")
    assert health.status == 503 and (await health.json())["status"] == "draining"


async def test_insecure_mode_skips_signatures(aiohttp_client: Any) -> None:
    """With the explicit development setting, unsigned webhooks are accepted."""
    client = await _client(aiohttp_client, insecure_skip_signature=True)
    assert (await _post(client, _form("+18005550101"), sign=False)).status == 200
