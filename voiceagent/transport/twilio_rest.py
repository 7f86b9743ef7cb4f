"""The Twilio REST seam: start and steer calls, record them, configure numbers.

``TwilioRest`` is what voiceagent needs from Twilio's REST API; ``TwilioRestClient`` is the
real one, on the twilio package's ``Client`` with our aiohttp transport
(``transport/twilio_http.py``), so no request blocks the event loop. It talks to
``TWILIO_API_BASE_URL`` (Twilio's own by default; the fake of ``voiceagent/sim/`` in tests
and ``simulate``) with ``TWILIO_ACCOUNT_SID`` and either ``TWILIO_AUTH_TOKEN`` or an API key
pair (``TWILIO_API_KEY_SID`` + ``TWILIO_API_KEY_SECRET``). Every failure leaves as
``TwilioApiError`` (HTTP status and Twilio's error code, or status 0: unreachable).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.response import Response
from twilio.rest import Client

from voiceagent.errors import ConfigError, TwilioApiError
from voiceagent.settings import Settings
from voiceagent.transport.twilio_http import TWILIO_API, AiohttpTwilioHttp


@dataclass(frozen=True, slots=True)
class CallRequest:
    """An outbound call to create (the ``Calls.json`` parameters voiceagent uses)."""

    to: str
    from_: str
    url: str  # where Twilio fetches the call's TwiML (our /voice)
    status_callback: str = ""
    status_callback_events: tuple[str, ...] = ("initiated", "ringing", "answered", "completed")
    machine_detection: str = ""  # "" (off), "Enable" or "DetectMessageEnd"
    async_amd: bool = False
    async_amd_status_callback: str = ""
    ring_timeout_s: int | None = None  # Twilio's Timeout (default 60 s)


@dataclass(frozen=True, slots=True)
class CallInfo:
    """A call as the REST API reports it (the twilio package keeps its ``from`` private)."""

    sid: str
    status: str
    to: str
    direction: str
    answered_by: str | None = None
    duration_s: int | None = None


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """A recording started on a call."""

    sid: str
    call_sid: str
    status: str


@dataclass(frozen=True, slots=True)
class NumberInfo:
    """One of the account's phone numbers and where its calls go."""

    sid: str
    phone_number: str
    voice_url: str
    voice_method: str
    voice_fallback_url: str
    status_callback: str


@dataclass(frozen=True, slots=True)
class NumberUpdate:
    """Fields to change on a number (None: leave as is)."""

    voice_url: str | None = None
    voice_method: str | None = None
    voice_fallback_url: str | None = None
    status_callback: str | None = None


class TwilioRest(Protocol):
    """What voiceagent asks of Twilio's REST API."""

    async def create_call(self, request: CallRequest) -> CallInfo: ...

    async def fetch_call(self, call_sid: str) -> CallInfo: ...

    async def update_call(
        self, call_sid: str, *, status: str | None = None, twiml: str | None = None,
        url: str | None = None,
    ) -> CallInfo: ...  # fmt: skip

    async def start_recording(
        self, call_sid: str, *, callback_url: str, channels: str = "dual",
        events: Sequence[str] = ("completed",),
    ) -> RecordingInfo: ...  # fmt: skip

    async def list_numbers(self, phone_number: str | None = None) -> list[NumberInfo]: ...

    async def update_number(self, sid: str, update: NumberUpdate) -> NumberInfo: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class TwilioCredentials:
    """The account and how to authenticate (auth token, or an API key pair)."""

    account_sid: str
    auth_token: str = ""
    api_key_sid: str = ""
    api_key_secret: str = ""
    base_url: str = TWILIO_API
    timeout_s: float = 10.0

    def login(self) -> tuple[str, str]:
        """Basic-auth user and password; ConfigError naming the settings when incomplete."""
        if not self.account_sid.startswith("AC"):
            raise ConfigError("must be the account SID (AC...)", path="TWILIO_ACCOUNT_SID")
        if self.api_key_sid or self.api_key_secret:
            if not (self.api_key_sid.startswith("SK") and self.api_key_secret):
                raise ConfigError("needs both TWILIO_API_KEY_SID (SK...) and its secret",
                                  path="TWILIO_API_KEY_SECRET")  # fmt: skip
            return self.api_key_sid, self.api_key_secret
        if not self.auth_token:
            raise ConfigError("is empty: the REST API needs it or an API key pair",
                              path="TWILIO_AUTH_TOKEN")  # fmt: skip
        return self.account_sid, self.auth_token


def credentials_from(settings: Settings) -> TwilioCredentials:
    """The REST credentials and base URL the settings name."""
    return TwilioCredentials(
        account_sid=settings.twilio_account_sid, auth_token=settings.twilio_auth_token,
        api_key_sid=settings.twilio_api_key_sid, api_key_secret=settings.twilio_api_key_secret,
        base_url=settings.twilio_api_base_url,
    )  # fmt: skip


def _page_error(what: str, exc: TwilioException) -> TwilioApiError:
    """A list's failed page: the twilio package raises ``TwilioException(message, response)``
    there, so status and code come from the response it carries."""
    response = exc.args[1] if len(exc.args) > 1 else None
    if not isinstance(response, Response):
        return TwilioApiError(f"{what}: {exc}")
    try:
        body = json.loads(response.text)
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    code = body.get("code") if isinstance(body.get("code"), int) else None
    message = str(body.get("message") or response.text[:200])
    return TwilioApiError(f"{what}: {message}", status=response.status_code, code=code)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _call(item: Any) -> CallInfo:
    duration = _text(item.duration)
    return CallInfo(
        sid=_text(item.sid), status=_text(item.status),
        to=_text(item.to), direction=_text(item.direction),
        answered_by=_text(item.answered_by) or None,
        duration_s=int(duration) if duration.isdigit() else None,
    )  # fmt: skip


def _number(item: Any) -> NumberInfo:
    return NumberInfo(
        sid=_text(item.sid), phone_number=_text(item.phone_number),
        voice_url=_text(item.voice_url), voice_method=_text(item.voice_method),
        voice_fallback_url=_text(item.voice_fallback_url),
        status_callback=_text(item.status_callback),
    )  # fmt: skip


class TwilioRestClient:
    """The real seam: the twilio package's REST client over our aiohttp transport."""

    def __init__(self, credentials: TwilioCredentials) -> None:
        user, password = credentials.login()
        self._http = AiohttpTwilioHttp(credentials.base_url, credentials.timeout_s)
        # An explicit environment: TWILIO_EDGE / TWILIO_REGION must not move the requests.
        self._client = Client(user, password, account_sid=credentials.account_sid,
                              http_client=self._http, environment={"VOICEAGENT": "1"})  # fmt: skip
        self.account_sid = credentials.account_sid

    async def _do(self, what: str, work: Any) -> Any:
        try:
            return await work
        except TwilioRestException as exc:
            message = exc.msg if isinstance(exc.msg, str) else str(exc.msg)
            raise TwilioApiError(f"{what}: {message}", status=int(exc.status),
                                 code=exc.code) from exc  # fmt: skip
        except TwilioException as exc:
            raise _page_error(what, exc) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TwilioApiError(f"{what}: {type(exc).__name__} {exc}".rstrip()) from exc

    async def create_call(self, request: CallRequest) -> CallInfo:
        args: dict[str, Any] = {"to": request.to, "from_": request.from_, "url": request.url}
        if request.status_callback:
            args |= {
                "status_callback": request.status_callback,
                "status_callback_event": list(request.status_callback_events),
            }
        if request.machine_detection:
            args["machine_detection"] = request.machine_detection
        if request.async_amd:
            args |= {
                "async_amd": "true",
                "async_amd_status_callback": request.async_amd_status_callback,
            }
        if request.ring_timeout_s is not None:
            args["timeout"] = request.ring_timeout_s
        item = await self._do("create call", self._client.calls.create_async(**args))
        return _call(item)

    async def fetch_call(self, call_sid: str) -> CallInfo:
        return _call(await self._do("fetch call", self._client.calls(call_sid).fetch_async()))

    async def update_call(
        self, call_sid: str, *, status: str | None = None, twiml: str | None = None,
        url: str | None = None,
    ) -> CallInfo:  # fmt: skip
        args = {k: v for k, v in {"status": status, "twiml": twiml, "url": url}.items() if v}
        work = self._client.calls(call_sid).update_async(**args)
        return _call(await self._do("update call", work))

    async def start_recording(
        self, call_sid: str, *, callback_url: str, channels: str = "dual",
        events: Sequence[str] = ("completed",),
    ) -> RecordingInfo:  # fmt: skip
        work = self._client.calls(call_sid).recordings.create_async(
            recording_status_callback=callback_url,
            recording_status_callback_event=list(events),
            recording_channels=channels,
        )
        item = await self._do("start recording", work)
        return RecordingInfo(_text(item.sid), _text(item.call_sid), _text(item.status))

    async def list_numbers(self, phone_number: str | None = None) -> list[NumberInfo]:
        args = {"phone_number": phone_number} if phone_number else {}
        items = await self._do("list numbers", self._client.incoming_phone_numbers.list_async(
            **args))  # fmt: skip
        return [_number(item) for item in items]

    async def update_number(self, sid: str, update: NumberUpdate) -> NumberInfo:
        args = {k: v for k, v in {
            "voice_url": update.voice_url, "voice_method": update.voice_method,
            "voice_fallback_url": update.voice_fallback_url,
            "status_callback": update.status_callback}.items() if v is not None}  # fmt: skip
        work = self._client.incoming_phone_numbers(sid).update_async(**args)
        return _number(await self._do("update number", work))

    async def close(self) -> None:
        await self._http.close()
