"""The `/voice` webhook and `/healthz` through real HTTP: signatures, refusal, drain."""

from __future__ import annotations

from tests.rig import PUBLIC, REALTIME_A, RELAY, TOKEN, Rig, StartRig, webhook_form
from voiceagent.protocols.signature import compute_signature


async def test_unsigned_and_wrongly_signed_webhooks_get_403(rig: Rig) -> None:
    """A webhook without a signature, or signed for another URL, is refused with 403."""
    form = webhook_form(REALTIME_A)
    assert (await rig.post_signed("/voice", form, sign=False))[0] == 403
    bad = compute_signature(TOKEN, "https://elsewhere.test/voice", form)
    headers = {"X-Twilio-Signature": bad}
    async with rig.http.post(rig.base_url + "/voice", data=form, headers=headers) as resp:
        assert resp.status == 403


async def test_unknown_number_gets_spoken_refusal(rig: Rig) -> None:
    """A call to a number missing from the config hears the refusal and is hung up."""
    form = webhook_form("+15550009999")
    headers = {"X-Twilio-Signature": compute_signature(TOKEN, PUBLIC + "/voice", form)}
    async with rig.http.post(rig.base_url + "/voice", data=form, headers=headers) as resp:
        body = await resp.text()
        assert resp.status == 200 and resp.content_type == "text/xml"
    assert "<Say>Sorry, this number is not in service. Goodbye.</Say><Hangup />" in body


async def test_each_mode_gets_its_connect_twiml(rig: Rig) -> None:
    """Realtime numbers get <Stream>, relay numbers <ConversationRelay>, both with an action."""
    _, stream = await rig.post_signed("/voice", webhook_form(REALTIME_A))
    assert '<Stream url="wss://voice.example.test/media-stream">' in stream
    assert 'action="https://voice.example.test/voice/action?mode=realtime-passthrough' in stream
    _, relay = await rig.post_signed("/voice", webhook_form(RELAY))
    assert 'url="wss://voice.example.test/conversation"' in relay
    assert "?" not in stream.split('url="')[1].split('"')[0]


async def test_draining_server_answers_503_and_healthz_says_so(rig: Rig) -> None:
    """While draining, /voice answers 503 (Twilio uses the fallback URL) and /healthz too."""
    async with rig.http.get(rig.base_url + "/healthz") as health:
        assert health.status == 200
    rig.services.calls.draining = True
    assert (await rig.post_signed("/voice", webhook_form(REALTIME_A)))[0] == 503
    async with rig.http.get(rig.base_url + "/healthz") as health:
        assert health.status == 503 and (await health.json())["status"] == "draining"


async def test_insecure_mode_skips_signatures(start_rig: StartRig) -> None:
    """With the explicit development setting, unsigned webhooks are accepted."""
    rig = await start_rig(insecure_skip_signature=True)
    assert (await rig.post_signed("/voice", webhook_form(REALTIME_A), sign=False))[0] == 200
