"""The fake Twilio REST API's Calls rules (no sockets): what a create needs, what an update does
in each call state, as the real API answers."""

from __future__ import annotations

import base64

import pytest

from voiceagent.sim.fake_twilio_resources import FakeCall, FakeNumber, RestError, basic_user
from voiceagent.sim.fake_twilio_rest_calls import call_from_form, update_call

OURS = FakeNumber("PN" + "0" * 32, "AC" + "0" * 32, "+18005550100")


def form(**fields: str) -> dict[str, list[str]]:
    return {name: [value] for name, value in fields.items()}


@pytest.mark.parametrize(
    ("fields", "code"),
    [({"From": "+18005550100", "Url": "https://x.test/v"}, 21201),
     ({"To": "+14155550100", "Url": "https://x.test/v"}, 21213),
     ({"To": "+14155550100", "From": "+18005550100"}, 21205),
     ({"To": "+14155550100", "From": "+18005550100", "Url": "ftp://x"}, 21205),
     ({"To": "+14155550100", "From": "+18005550100", "Url": "https://x.test/v",
       "StatusCallbackEvent": "picked-up"}, 21626)],
)  # fmt: skip
def test_a_create_is_checked_like_twilio(fields: dict[str, str], code: int) -> None:
    """Missing To/From/Url, a bad URL or an unknown status event: 400 with Twilio's code."""
    with pytest.raises(RestError) as caught:
        call_from_form(form(**fields), OURS.account_sid, [OURS])
    assert (caught.value.status, caught.value.code) == (400, code)


def test_updates_follow_the_call_state() -> None:
    """canceled ends a ringing call and leaves a live one; completed hangs up a live call; a
    Url redirects it; an ended call refuses updates (21220)."""
    call = call_from_form(form(To="+14155550100", From="+18005550100", Url="https://x.test/v"),
                          OURS.account_sid, [OURS])  # fmt: skip
    assert call.status == "queued" and call.direction == "outbound-api"
    call.status = "ringing"
    assert update_call(call, form(Status="canceled")) == "canceled"
    live = FakeCall("CA" + "1" * 32, OURS.account_sid, "+1", "+2", "inbound", "in-progress")
    assert update_call(live, form(Status="canceled")) is None
    assert update_call(live, form(Url="https://x.test/next")) is None
    assert live.redirects == ["url:https://x.test/next"]
    assert update_call(live, form(Status="completed")) == "completed"
    live.status = "completed"
    with pytest.raises(RestError) as caught:
        update_call(live, form(Twiml="<Response/>"))
    assert caught.value.code == 21220


def test_basic_auth_takes_the_account_or_an_api_key() -> None:
    """The account SID with its token, or a key SID with its secret; nothing else."""

    def header(user: str, secret: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()

    keys = {"SK1": "s3cret"}
    assert basic_user(header("AC1", "tok"), "AC1", "tok", keys) == "AC1"
    assert basic_user(header("SK1", "s3cret"), "AC1", "tok", keys) == "SK1"
    assert basic_user(header("SK1", "tok"), "AC1", "tok", keys) is None
    assert basic_user("Bearer tok", "AC1", "tok", keys) is None
    assert basic_user("Basic !!!", "AC1", "tok", keys) is None
