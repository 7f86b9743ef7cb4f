"""The Calls resource's rules in the fake Twilio REST API: validating a create, applying an update.

Pure functions over ``FakeCall`` (no I/O): ``call_from_form`` checks a ``Calls.json`` create
the way the real API does (its error codes and messages) and builds the queued call;
``update_call`` applies ``Status``/``Url``/``Twiml`` and says whether the call must end.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from voiceagent.sim.fake_twilio_resources import (
    CALL_DONE,
    E164,
    FakeCall,
    FakeNumber,
    RestError,
)
from voiceagent.sim.webhooks import new_sid

STATUS_EVENTS = frozenset({"initiated", "ringing", "answered", "completed"})
MACHINE_DETECTION = frozenset({"Enable", "DetectMessageEnd"})
TWIML_MAX = 4000


def _first(params: dict[str, list[str]], name: str, default: str = "") -> str:
    return (params.get(name) or [default])[0]


def _check_url(value: str, what: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RestError(400, 21205, f"{what} is not a valid URL: {value}")


def _method(params: dict[str, list[str]], name: str) -> str:
    value = _first(params, name, "POST").upper()
    if value not in ("GET", "POST"):
        raise RestError(400, 21200, f"{name} must be GET or POST")
    return value


def call_from_form(
    params: dict[str, list[str]], account_sid: str, numbers: Iterable[FakeNumber]
) -> FakeCall:
    """The queued outbound call a valid create makes; RestError as Twilio answers otherwise."""
    to, from_ = _first(params, "To"), _first(params, "From")
    if not to:
        raise RestError(400, 21201, "No 'To' number is specified")
    if not from_:
        raise RestError(400, 21213, "No 'From' number is specified")
    if not E164.fullmatch(to):
        raise RestError(400, 21211, f"Invalid 'To' Phone Number: {to}")
    if not E164.fullmatch(from_):
        raise RestError(400, 21212, f"Invalid 'From' Phone Number: {from_}")
    owned = {n.phone_number: n for n in numbers}
    if from_ not in owned:
        raise RestError(400, 21210, f"The source phone number provided, {from_}, is not yet "
                        "verified for your account. You may only make calls from phone numbers "
                        "that you've verified or purchased from Twilio.")  # fmt: skip
    url, twiml = _first(params, "Url"), _first(params, "Twiml")
    if not url and not twiml and not _first(params, "ApplicationSid"):
        raise RestError(400, 21205, "Url parameter is required. Please provide a Url, Twiml, "
                        "or ApplicationSid.")  # fmt: skip
    if url:
        _check_url(url, "Url")
    if len(twiml) > TWIML_MAX:
        raise RestError(400, 21232, f"Twiml is longer than {TWIML_MAX} characters")
    names = ("StatusCallback", "AsyncAmdStatusCallback")
    callbacks = {name: _first(params, name) for name in names}
    for name, value in callbacks.items():
        if value:
            _check_url(value, name)
    events = tuple(" ".join(params.get("StatusCallbackEvent", [])).split()) or ("completed",)
    if not set(events) <= STATUS_EVENTS:
        raise RestError(400, 21626, f"Invalid StatusCallbackEvent: {' '.join(events)}")
    detection = _first(params, "MachineDetection")
    if detection and detection not in MACHINE_DETECTION:
        raise RestError(400, 21200, f"Invalid MachineDetection: {detection}")
    return FakeCall(
        new_sid("CA"), account_sid, from_, to, "outbound-api", url=url, twiml=twiml,
        method=_method(params, "Method"),
        status_callback=callbacks["StatusCallback"],
        status_callback_method=_method(params, "StatusCallbackMethod"),
        status_callback_events=events, machine_detection=detection,
        async_amd=_first(params, "AsyncAmd").lower() == "true",
        async_amd_status_callback=callbacks["AsyncAmdStatusCallback"],
        async_amd_status_callback_method=_method(params, "AsyncAmdStatusCallbackMethod"),
        phone_number_sid=owned[from_].sid,
        params={name: values[0] for name, values in params.items()},
    )  # fmt: skip


def update_call(call: FakeCall, params: dict[str, list[str]]) -> str | None:
    """Apply an update to ``call``; the status it must end with, or None if it goes on.

    ``Status=canceled`` ends a queued or ringing call and leaves a live one alone;
    ``Status=completed`` hangs up a live call (a queued or ringing one ends canceled). A
    ``Url`` or ``Twiml`` redirects a live call. An ended call refuses updates (21220).
    """
    if call.status in CALL_DONE:
        raise RestError(400, 21220, "Call is not in-progress. Cannot redirect.")
    status = _first(params, "Status")
    if status and status not in ("canceled", "completed"):
        raise RestError(400, 21218, f"Invalid Status: {status}")
    waiting = call.status in ("queued", "initiated", "ringing")
    if status == "canceled":
        return "canceled" if waiting else None
    if status == "completed":
        return "canceled" if waiting else "completed"
    url, twiml = _first(params, "Url"), _first(params, "Twiml")
    if url:
        _check_url(url, "Url")
        call.url, call.twiml = url, ""
        call.method = _method(params, "Method")
        call.redirects.append("url:" + url)
    elif twiml:
        if len(twiml) > TWIML_MAX:
            raise RestError(400, 21232, f"Twiml is longer than {TWIML_MAX} characters")
        call.twiml = twiml
        call.redirects.append("twiml:" + twiml)
    return None
