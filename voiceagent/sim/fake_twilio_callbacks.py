"""What the fake Twilio REST API sends back: signed status, AMD and recording callbacks.

Each callback is a form POST (or GET with a query) signed with ``X-Twilio-Signature`` over the
callback URL as given (the public URL), like Twilio; ``url_map`` maps that public URL onto
where the server listens locally (``SimTarget.local``), as DNS would for real Twilio.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import structlog

from voiceagent.protocols.signature import compute_signature
from voiceagent.sim.fake_twilio_resources import FakeCall, FakeRecording, rfc2822

log = structlog.get_logger("voiceagent.sim.fake_twilio")


def identity(url: str) -> str:
    return url


@dataclass(frozen=True, slots=True)
class Delivery:
    """One callback the fake sent: where, what, and the answer's status (0: unreachable)."""

    kind: str  # "status", "amd", "recording"
    url: str
    form: dict[str, str]
    status: int


def call_params(call: FakeCall) -> dict[str, str]:
    """The standard call parameters of every call webhook and callback (docs/protocols.md, Twilio
    §4)."""
    return {
        "AccountSid": call.account_sid, "ApiVersion": "2010-04-01", "CallSid": call.sid,
        "CallStatus": call.status, "Direction": call.direction, "From": call.from_,
        "To": call.to, "Caller": call.from_, "Called": call.to,
        "FromCountry": "US", "FromState": "", "FromCity": "", "FromZip": "",
        "ToCountry": "US", "ToState": "", "ToCity": "", "ToZip": "",
        "CallerCountry": "US", "CallerState": "", "CallerCity": "", "CallerZip": "",
        "CalledCountry": "US", "CalledState": "", "CalledCity": "", "CalledZip": "",
    }  # fmt: skip


@dataclass
class Callbacks:
    """Sends the fake's signed callbacks and keeps every delivery for tests."""

    auth_token: str
    http: aiohttp.ClientSession
    url_map: Callable[[str], str] = identity
    sent: list[Delivery] = field(default_factory=list)
    _news: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, kind: str, url: str, form: dict[str, str], method: str = "POST") -> int:
        """Deliver one callback; the answer's status, 0 when the server could not be reached."""
        if not url:
            return 0
        get = method.upper() == "GET"
        headers = {
            "X-Twilio-Signature": compute_signature(
                self.auth_token, _with_query(url, form) if get else url, {} if get else form
            )
        }
        status = 0
        try:
            request: dict[str, Any] = {"params": form} if get else {"data": form}
            async with self.http.request(
                method.upper(), self.url_map(url), headers=headers,
                timeout=aiohttp.ClientTimeout(total=15), **request,
            ) as resp:  # fmt: skip
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("fake_twilio.callback_failed", kind=kind, error=type(exc).__name__)
        self.sent.append(Delivery(kind, url, form, status))
        self._news.set()
        return status

    async def status(self, call: FakeCall, event: str, **extra: str) -> None:
        """A call status callback for ``event`` (initiated, ringing, answered, completed) if the
        call asked for that event."""
        if not call.status_callback or event not in call.status_callback_events:
            return
        form = call_params(call) | {
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(call.sequence),
            "Timestamp": rfc2822(call.updated) or "",
        }
        call.sequence += 1
        if call.status in ("completed", "busy", "no-answer", "failed", "canceled"):
            duration = call.duration or "0"
            form |= {"CallDuration": duration, "Duration": str(-(-int(duration) // 60))}
        if call.answered_by and not call.async_amd:
            form["AnsweredBy"] = call.answered_by
        await self.send("status", call.status_callback, form | extra,
                        call.status_callback_method)  # fmt: skip

    async def amd(self, call: FakeCall, detection_ms: int) -> None:
        """The asynchronous answering-machine detection result (``AsyncAmdStatusCallback``)."""
        form = {"AccountSid": call.account_sid, "CallSid": call.sid,
                "AnsweredBy": call.answered_by or "unknown",
                "MachineDetectionDuration": str(detection_ms)}  # fmt: skip
        await self.send("amd", call.async_amd_status_callback, form,
                        call.async_amd_status_callback_method)  # fmt: skip

    async def recording(self, rec: FakeRecording, event: str, media_url: str) -> None:
        """A recording status callback (``in-progress``, ``completed``, ``absent``)."""
        if not rec.status_callback or event not in rec.status_callback_events:
            return
        form = {"AccountSid": rec.account_sid, "CallSid": rec.call_sid,
                "RecordingSid": rec.sid, "RecordingUrl": media_url, "RecordingStatus": event,
                "RecordingChannels": str(rec.channels),
                "RecordingStartTime": rfc2822(rec.created) or "",
                "RecordingSource": "StartCallRecordingAPI", "RecordingTrack": rec.track,
                "ErrorCode": "0"}  # fmt: skip
        if event == "completed":
            form["RecordingDuration"] = rec.duration or "0"
        await self.send("recording", rec.status_callback, form, rec.status_callback_method)

    async def wait_for(
        self, predicate: Callable[[Delivery], bool], within: float = 10.0
    ) -> Delivery:
        """The first delivery matching ``predicate``, waiting up to ``within`` seconds."""
        async with asyncio.timeout(within):
            while True:
                for delivery in self.sent:
                    if predicate(delivery):
                        return delivery
                self._news.clear()
                await self._news.wait()


def _with_query(url: str, form: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(form)
