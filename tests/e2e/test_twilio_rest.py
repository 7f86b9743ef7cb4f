"""The fake Twilio REST API and the REST seam, through real sockets: the twilio package's client
(over our aiohttp transport) against the fake, and signed callbacks to a real local receiver."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from voiceagent.errors import ConfigError, TwilioApiError
from voiceagent.protocols.signature import SignatureVerifier
from voiceagent.settings import load_settings
from voiceagent.sim.fake_twilio_rest import FakeTwilioRest
from voiceagent.sim.webhooks import new_sid
from voiceagent.transport.twilio_http import basic_auth
from voiceagent.transport.twilio_rest import (
    CallRequest,
    NumberUpdate,
    TwilioCredentials,
    TwilioRestClient,
    credentials_from,
)

OURS = "+18005550199"
CALLEE = "+14155550123"
PUBLIC = "https://hooks.example.com"
TOKEN = "fake-twilio-auth-token"


@dataclass
class Receiver:
    """A local HTTP server taking Twilio callbacks; each form kept with its signature verdict."""

    server: TestServer
    got: list[tuple[str, dict[str, str], bool]] = field(default_factory=list)

    def local(self, public: str) -> str:
        return str(self.server.make_url(public.removeprefix(PUBLIC)))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    verifier = SignatureVerifier(TOKEN, PUBLIC)
    holder: list[Receiver] = []

    async def take(request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        signature = request.headers.get("X-Twilio-Signature")
        ok = verifier.verify_webhook(request.raw_path, form, signature)
        holder[0].got.append((request.path, form, ok))
        return web.Response(text="")

    app = web.Application()
    app.router.add_post("/{tail:.*}", take)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    holder.append(Receiver(server))
    yield holder[0]
    await server.close()


@pytest.fixture
async def fake(receiver: Receiver) -> AsyncIterator[FakeTwilioRest]:
    async with FakeTwilioRest(numbers=[OURS], url_map=receiver.local,
                              api_keys={"SK" + "1" * 32: "key-secret"}) as fake:  # fmt: skip
        yield fake


@pytest.fixture
async def client(fake: FakeTwilioRest) -> AsyncIterator[TwilioRestClient]:
    rest = TwilioRestClient(TwilioCredentials(fake.account_sid, TOKEN, base_url=fake.url))
    yield rest
    await rest.close()


def request(to: str = CALLEE, from_: str = OURS, **kw: object) -> CallRequest:
    return CallRequest(to=to, from_=from_, url=PUBLIC + "/voice", **kw)  # type: ignore[arg-type]


async def test_create_call_sends_amd_and_callbacks_and_gets_a_queued_call(
    client: TwilioRestClient, fake: FakeTwilioRest
) -> None:
    """A create carries To, From, Url, the repeated StatusCallbackEvent and AsyncAmd fields, and
    answers with a queued outbound-api call the fake then knows."""
    info = await client.create_call(request(
        status_callback=PUBLIC + "/call-status", machine_detection="DetectMessageEnd",
        async_amd=True, async_amd_status_callback=PUBLIC + "/call-status/amd",
    ))  # fmt: skip
    assert info.sid.startswith("CA") and len(info.sid) == 34
    assert (info.status, info.direction, info.to) == ("queued", "outbound-api", CALLEE)
    sent = fake.received[-1]
    assert sent.method == "POST" and sent.path.endswith(f"/Accounts/{fake.account_sid}/Calls.json")
    assert sent.params["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert (sent.param("MachineDetection"), sent.param("AsyncAmd")) == ("DetectMessageEnd", "true")
    assert sent.param("Url") == PUBLIC + "/voice"
    assert fake.calls[info.sid].async_amd_status_callback == PUBLIC + "/call-status/amd"
    assert (await client.fetch_call(info.sid)).status == "queued"


@pytest.mark.parametrize(
    ("to", "from_", "code"),
    [("555-0100", OURS, 21211), (CALLEE, "nobody", 21212), (CALLEE, "+18005550100", 21210)],
)
async def test_bad_numbers_get_twilios_error_codes(
    client: TwilioRestClient, to: str, from_: str, code: int
) -> None:
    """An invalid To, an invalid From and a From the account does not own are 400s with
    Twilio's codes, raised as TwilioApiError."""
    with pytest.raises(TwilioApiError) as caught:
        await client.create_call(request(to, from_))
    assert (caught.value.status, caught.value.code) == (400, code)


async def test_wrong_credentials_are_20003_and_an_api_key_pair_works(fake: FakeTwilioRest) -> None:
    """A wrong auth token gets 401 with code 20003; the account's API key pair authenticates."""
    wrong = TwilioRestClient(TwilioCredentials(fake.account_sid, "nope", base_url=fake.url))
    keyed = TwilioRestClient(TwilioCredentials(
        fake.account_sid, api_key_sid="SK" + "1" * 32, api_key_secret="key-secret",
        base_url=fake.url))  # fmt: skip
    try:
        with pytest.raises(TwilioApiError) as caught:
            await wrong.list_numbers()
        assert (caught.value.status, caught.value.code) == (401, 20003)
        assert [n.phone_number for n in await keyed.list_numbers()] == [OURS]
        assert fake.received[-1].username == "SK" + "1" * 32
    finally:
        await wrong.close()
        await keyed.close()


async def test_unknown_call_is_20404(client: TwilioRestClient) -> None:
    """Fetching a call the account never had is a 404 with code 20404."""
    with pytest.raises(TwilioApiError) as caught:
        await client.fetch_call(new_sid("CA"))
    assert (caught.value.status, caught.value.code) == (404, 20404)


async def test_hanging_up_posts_the_signed_completed_status_callback(
    client: TwilioRestClient, fake: FakeTwilioRest, receiver: Receiver
) -> None:
    """Status=completed on a live call ends it and posts its signed ``completed`` callback;
    a second update is refused with 21220."""
    info = await client.create_call(request(status_callback=PUBLIC + "/call-status"))
    await fake.set_status(fake.calls[info.sid], "in-progress", "answered")
    ended = await client.update_call(info.sid, status="completed")
    assert ended.status == "completed"
    paths = [(path, form["CallStatus"], ok) for path, form, ok in receiver.got]
    assert paths == [("/call-status", "in-progress", True), ("/call-status", "completed", True)]
    last = receiver.got[-1][1]
    assert last["Direction"] == "outbound-api" and last["CallSid"] == info.sid
    assert last["SequenceNumber"] == "1" and "CallDuration" in last
    with pytest.raises(TwilioApiError) as caught:
        await client.update_call(info.sid, twiml="<Response><Hangup/></Response>")
    assert caught.value.code == 21220


async def test_recording_callback_arrives_signed_when_the_call_ends(
    client: TwilioRestClient, fake: FakeTwilioRest, receiver: Receiver
) -> None:
    """A recording started on a live (inbound) call posts its signed ``completed`` recording
    callback with the media URL and duration once the call ends."""
    sid = new_sid("CA")
    fake.add_call(sid, CALLEE, OURS)
    rec = await client.start_recording(sid, callback_url=PUBLIC + "/recording-status")
    assert rec.sid.startswith("RE") and rec.call_sid == sid and rec.status == "in-progress"
    assert fake.received[-1].param("RecordingChannels") == "dual"
    await fake.end_call(sid)
    delivery = await fake.callbacks.wait_for(lambda d: d.kind == "recording")
    assert delivery.status == 200
    _, form, ok = next(entry for entry in receiver.got if entry[0] == "/recording-status")
    assert ok and form["RecordingStatus"] == "completed" and form["RecordingSid"] == rec.sid
    media = f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Recordings/{rec.sid}"
    assert form["RecordingUrl"] == media
    assert form["RecordingDuration"].isdigit() and form["RecordingChannels"] == "2"


async def test_recording_a_call_that_is_not_live_is_refused(
    client: TwilioRestClient, fake: FakeTwilioRest
) -> None:
    """Starting a recording on a queued call is a 400 (21220), not a recording."""
    info = await client.create_call(request())
    with pytest.raises(TwilioApiError) as caught:
        await client.start_recording(info.sid, callback_url=PUBLIC + "/recording-status")
    assert caught.value.code == 21220 and not fake.recordings


async def test_numbers_are_listed_and_their_voice_url_updated(
    client: TwilioRestClient, fake: FakeTwilioRest
) -> None:
    """A number is found by PhoneNumber and its VoiceUrl, VoiceMethod and StatusCallback set."""
    (number,) = await client.list_numbers(OURS)
    assert number.sid.startswith("PN") and await client.list_numbers("+18005550000") == []
    changed = await client.update_number(number.sid, NumberUpdate(
        voice_url=PUBLIC + "/voice", voice_method="POST",
        status_callback=PUBLIC + "/call-status"))  # fmt: skip
    assert (changed.voice_url, changed.status_callback) == (
        PUBLIC + "/voice",
        PUBLIC + "/call-status",
    )
    assert fake.owned[number.sid].voice_url == PUBLIC + "/voice"


async def test_the_wire_shapes_are_twilios(fake: FakeTwilioRest) -> None:
    """Read raw: a create answers 201 with the Call resource's fields, a list is a page with
    ``calls``, an error carries code, message, more_info and status."""
    auth = basic_auth((fake.account_sid, TOKEN))
    base = f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}"
    async with aiohttp.ClientSession(headers=auth) as http:
        form = {"To": CALLEE, "From": OURS, "Twiml": "<Response><Hangup/></Response>"}
        async with http.post(base + "/Calls.json", data=form) as resp:
            body = await resp.json()
            assert resp.status == 201
        assert {"sid", "status", "direction", "answered_by", "uri", "subresource_uris",
                "date_created", "start_time", "price_unit"} <= set(body)  # fmt: skip
        assert body["uri"] == f"/2010-04-01/Accounts/{fake.account_sid}/Calls/{body['sid']}.json"
        async with http.get(base + "/Calls.json") as resp:
            listed = await resp.json()
        assert [c["sid"] for c in listed["calls"]] == [body["sid"]]
        assert listed["next_page_uri"] is None and listed["page"] == 0
        async with http.post(base + "/Calls.json", data={"To": CALLEE, "From": OURS}) as resp:
            error = await resp.json()
        assert resp.status == 400 and error["code"] == 21205 and error["status"] == 400
        assert error["more_info"] == "https://www.twilio.com/docs/errors/21205"


async def test_an_unreachable_api_is_a_twilio_api_error() -> None:
    """Nothing listening at the base URL: TwilioApiError with status 0, not an aiohttp error."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rest = TwilioRestClient(TwilioCredentials(new_sid("AC"), TOKEN,
                                              base_url=f"http://127.0.0.1:{port}"))  # fmt: skip
    try:
        with pytest.raises(TwilioApiError) as caught:
            await rest.fetch_call(new_sid("CA"))
        assert caught.value.status == 0 and "unreachable" in str(caught.value)
    finally:
        await rest.close()


def test_settings_name_the_missing_credentials() -> None:
    """Without an account SID, or with half an API key pair, the seam refuses with the setting's
    name; a full pair is used instead of the auth token."""
    with pytest.raises(ConfigError, match="TWILIO_ACCOUNT_SID"):
        credentials_from(load_settings({}, env_file=None)).login()
    half = load_settings({"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_API_KEY_SID": "SK1"},
                         env_file=None)  # fmt: skip
    with pytest.raises(ConfigError, match="TWILIO_API_KEY_SECRET"):
        credentials_from(half).login()
    full = load_settings({"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "t",
                          "TWILIO_API_KEY_SID": "SK1", "TWILIO_API_KEY_SECRET": "s",
                          "TWILIO_API_BASE_URL": "http://127.0.0.1:9"}, env_file=None)  # fmt: skip
    creds = credentials_from(full)
    assert creds.login() == ("SK1", "s") and creds.base_url == "http://127.0.0.1:9"
