"""The fake Twilio REST API's resources: calls, recordings and numbers with the real JSON shapes.

Shapes follow the Twilio 2010-04-01 API (the ``Call``, ``Recording`` and
``IncomingPhoneNumber`` resources; dates in RFC 2822, durations as strings, ``null`` where
Twilio sends null). ``RestError`` is a Twilio error answer (``code``, ``message``,
``more_info``, ``status``) as the API sends it and as twilio-python parses it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

API = "/2010-04-01"
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
CALL_DONE = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})


class RestError(Exception):
    """A Twilio error answer: HTTP ``status`` and Twilio's numeric ``code``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        """The JSON body Twilio sends with an error."""
        return {"code": self.code, "message": self.message,
                "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
                "status": self.status}  # fmt: skip


def not_found(path: str) -> RestError:
    """Twilio's 20404 for an unknown resource."""
    return RestError(404, 20404, f"The requested resource {path} was not found")


def rfc2822(moment: datetime | None) -> str | None:
    """A timestamp as Twilio writes it (``Tue, 31 Aug 2010 20:36:28 +0000``)."""
    return None if moment is None else format_datetime(moment.astimezone(UTC), usegmt=False)


def now() -> datetime:
    """The fake's clock (UTC, whole seconds like Twilio's)."""
    return datetime.now(UTC).replace(microsecond=0)


def formatted(number: str) -> str:
    """A US number as Twilio's ``*_formatted`` fields show it; other numbers unchanged."""
    if number.startswith("+1") and len(number) == 12:
        return f"({number[2:5]}) {number[5:8]}-{number[8:]}"
    return number


@dataclass
class FakeCall:
    """One call the fake knows: created through ``Calls.json`` or announced by the simulator."""

    sid: str
    account_sid: str
    from_: str
    to: str
    direction: str  # "outbound-api" (created here) or "inbound"
    status: str = "queued"
    url: str = ""
    method: str = "POST"
    twiml: str = ""
    status_callback: str = ""
    status_callback_method: str = "POST"
    status_callback_events: tuple[str, ...] = ("completed",)
    machine_detection: str = ""  # "", "Enable" or "DetectMessageEnd"
    async_amd: bool = False
    async_amd_status_callback: str = ""
    async_amd_status_callback_method: str = "POST"
    answered_by: str | None = None
    phone_number_sid: str | None = None
    params: dict[str, str] = field(default_factory=dict)  # the create request, as received
    redirects: list[str] = field(default_factory=list)  # "url:..." / "twiml:..." updates
    created: datetime = field(default_factory=now)
    updated: datetime = field(default_factory=now)
    start_time: datetime | None = None
    end_time: datetime | None = None
    sequence: int = 0  # status callbacks sent so far (their SequenceNumber)

    @property
    def uri(self) -> str:
        return f"{API}/Accounts/{self.account_sid}/Calls/{self.sid}.json"

    @property
    def duration(self) -> str | None:
        if self.start_time is None or self.end_time is None:
            return None
        return str(int((self.end_time - self.start_time).total_seconds()))

    def to_json(self) -> dict[str, Any]:
        """The Call resource as the API returns it."""
        base = self.uri.removesuffix(".json")
        subs = (
            "notifications",
            "recordings",
            "payments",
            "events",
            "siprec",
            "streams",
            "transcriptions",
            "user_defined_message_subscriptions",
            "user_defined_messages",
        )
        return {
            "account_sid": self.account_sid, "annotation": None, "answered_by": self.answered_by,
            "api_version": "2010-04-01", "caller_name": None,
            "date_created": rfc2822(self.created), "date_updated": rfc2822(self.updated),
            "direction": self.direction, "duration": self.duration,
            "end_time": rfc2822(self.end_time), "forwarded_from": None,
            "from": self.from_, "from_formatted": formatted(self.from_), "group_sid": None,
            "parent_call_sid": None, "phone_number_sid": self.phone_number_sid, "price": None,
            "price_unit": "USD", "queue_time": "0", "sid": self.sid,
            "start_time": rfc2822(self.start_time), "status": self.status,
            "subresource_uris": {name: f"{base}/{_camel(name)}.json" for name in subs},
            "to": self.to, "to_formatted": formatted(self.to), "trunk_sid": None,
            "uri": self.uri,
        }  # fmt: skip


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


@dataclass
class FakeRecording:
    """A recording started on a call through ``Calls/{Sid}/Recordings.json``."""

    sid: str
    account_sid: str
    call_sid: str
    channels: int = 1
    track: str = "both"
    status_callback: str = ""
    status_callback_method: str = "POST"
    status_callback_events: tuple[str, ...] = ("completed",)
    status: str = "in-progress"
    created: datetime = field(default_factory=now)
    end_time: datetime | None = None

    @property
    def uri(self) -> str:
        return f"{API}/Accounts/{self.account_sid}/Calls/{self.call_sid}/Recordings/{self.sid}.json"

    @property
    def duration(self) -> str | None:
        if self.end_time is None:
            return None
        return str(int((self.end_time - self.created).total_seconds()))

    def media_path(self) -> str:
        """Where the recording's media is (``RecordingUrl`` in callbacks, no extension)."""
        return f"{API}/Accounts/{self.account_sid}/Recordings/{self.sid}"

    def to_json(self) -> dict[str, Any]:
        """The call Recording resource as the API returns it."""
        return {
            "account_sid": self.account_sid, "api_version": "2010-04-01",
            "call_sid": self.call_sid, "conference_sid": None, "channels": self.channels,
            "date_created": rfc2822(self.created), "date_updated": rfc2822(self.created),
            "start_time": rfc2822(self.created), "duration": self.duration, "sid": self.sid,
            "price": None, "price_unit": None, "status": self.status, "error_code": None,
            "encryption_details": None, "source": "StartCallRecordingAPI", "track": self.track,
            "uri": self.uri,
        }  # fmt: skip


@dataclass
class FakeNumber:
    """An IncomingPhoneNumber of the account, with its voice configuration."""

    sid: str
    account_sid: str
    phone_number: str
    voice_url: str = ""
    voice_method: str = "POST"
    voice_fallback_url: str = ""
    voice_fallback_method: str = "POST"
    status_callback: str = ""
    status_callback_method: str = "POST"
    created: datetime = field(default_factory=now)
    updated: datetime = field(default_factory=now)

    def to_json(self) -> dict[str, Any]:
        """The IncomingPhoneNumber resource as the API returns it."""
        return {
            "account_sid": self.account_sid, "address_requirements": "none",
            "address_sid": None, "api_version": "2010-04-01", "beta": False, "bundle_sid": None,
            "capabilities": {"fax": False, "mms": True, "sms": True, "voice": True},
            "date_created": rfc2822(self.created), "date_updated": rfc2822(self.updated),
            "emergency_address_sid": None, "emergency_address_status": "unregistered",
            "emergency_status": "Inactive", "friendly_name": formatted(self.phone_number),
            "identity_sid": None, "origin": "twilio", "phone_number": self.phone_number,
            "sid": self.sid, "sms_application_sid": "", "sms_fallback_method": "POST",
            "sms_fallback_url": "", "sms_method": "POST", "sms_url": "", "status": "in-use",
            "status_callback": self.status_callback,
            "status_callback_method": self.status_callback_method, "subresource_uris": {
                "assigned_add_ons": f"{self.uri.removesuffix('.json')}/AssignedAddOns.json"},
            "trunk_sid": None, "uri": self.uri, "voice_application_sid": None,
            "voice_caller_id_lookup": False, "voice_fallback_method": self.voice_fallback_method,
            "voice_fallback_url": self.voice_fallback_url, "voice_method": self.voice_method,
            "voice_receive_mode": "voice", "voice_url": self.voice_url,
        }  # fmt: skip

    @property
    def uri(self) -> str:
        return f"{API}/Accounts/{self.account_sid}/IncomingPhoneNumbers/{self.sid}.json"


def page(key: str, items: list[dict[str, Any]], path: str, page_size: int) -> dict[str, Any]:
    """A one-page list answer (``next_page_uri`` null), shaped like Twilio's 2010 lists."""
    uri = f"{path}?PageSize={page_size}&Page=0"
    return {key: items[:page_size], "end": max(0, min(len(items), page_size) - 1),
            "first_page_uri": uri, "next_page_uri": None, "page": 0, "page_size": page_size,
            "previous_page_uri": None, "start": 0, "uri": uri}  # fmt: skip


@dataclass(frozen=True, slots=True)
class RestRequest:
    """One request as the fake received it (form or query params, and who authenticated)."""

    method: str
    path: str
    params: dict[str, list[str]]
    username: str
    at: float  # the event loop's clock when it arrived

    def param(self, name: str) -> str:
        return (self.params.get(name) or [""])[0]


def basic_user(
    header: str, account_sid: str, auth_token: str, api_keys: dict[str, str]
) -> str | None:
    """Who an ``Authorization: Basic`` header authenticates: the account SID with its auth
    token, or an API key SID with its secret; None for anything else."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    expected = auth_token if user == account_sid else api_keys.get(user)
    if expected is None or not hmac.compare_digest(secret.encode(), expected.encode()):
        return None
    return user
