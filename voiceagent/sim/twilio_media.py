"""A simulated Twilio for Media Streams: one whole call against a voiceagent server.

``place_call`` POSTs the signed ``/voice`` webhook (twilio.md §4.1), follows the TwiML, opens
the signed WebSocket (signed over the public ``wss://`` URL, connected to the local one) and
runs it as Twilio does (twilio_stream.py: ``start`` with the ``<Parameter>``s, real-time
media from a ``CallScript``, playback with marks and ``clear``). When the server closes the
socket, or the caller hung up, it POSTs the signed ``<Connect action>`` callback and keeps the
TwiML it gets back.
"""

from __future__ import annotations

import contextlib
import secrets
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import aiohttp

from voiceagent.protocols.signature import compute_signature
from voiceagent.sim.call_script import CallRecord, CallScript
from voiceagent.sim.twilio_stream import MediaStreamCaller


@dataclass(frozen=True, slots=True)
class SimTarget:
    """Where the server listens locally, the public URL it believes in, and the auth token."""

    base_url: str  # e.g. http://127.0.0.1:8080
    public_url: str  # e.g. https://voice.example.com (what Twilio signs)
    auth_token: str

    def local(self, public: str) -> str:
        """Map a public https/wss URL from TwiML onto the local server."""
        base = self.public_url.rstrip("/")
        host = base.split("://", 1)[1]
        path = public.split(host, 1)[1] if host in public else public
        scheme = "ws" if public.startswith(("wss:", "ws:")) else "http"
        return scheme + self.base_url[self.base_url.index(":") :] + path


def new_sid(prefix: str) -> str:
    """A realistic Twilio SID: two letters and 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def call_form(call_sid: str, to: str, from_: str, account_sid: str) -> dict[str, str]:
    """The incoming-call webhook params, as real Twilio sends them (§4.1)."""
    return {
        "CallSid": call_sid,
        "AccountSid": account_sid,
        "From": from_,
        "To": to,
        "CallStatus": "ringing",
        "ApiVersion": "2010-04-01",
        "Direction": "inbound",
        "Caller": from_,
        "Called": to,
        "FromCountry": "US",
        "FromState": "CA",
        "FromCity": "",
        "FromZip": "",
        "ToCountry": "US",
        "ToState": "",
        "ToCity": "",
        "ToZip": "",
        "CallerCountry": "US",
        "CallerState": "CA",
        "CallerCity": "",
        "CallerZip": "",
        "CalledCountry": "US",
        "CalledState": "",
        "CalledCity": "",
        "CalledZip": "",
    }


async def place_call(
    target: SimTarget,
    to: str,
    script: CallScript,
    *,
    from_: str = "+14155550100",
    call_sid: str | None = None,
    http: aiohttp.ClientSession | None = None,
    bad_signature: bool = False,
    record_timing: bool = False,
) -> CallRecord:
    """Place one simulated call and return what the caller observed."""
    own = http is None
    session = http or aiohttp.ClientSession()
    try:
        call = _Call(target, session, to, from_, call_sid or new_sid("CA"), bad_signature)
        call.record_timing = record_timing
        await call.run(script)
        return call.record
    finally:
        if own:
            await session.close()


class _Call:
    def __init__(
        self,
        target: SimTarget,
        http: aiohttp.ClientSession,
        to: str,
        from_: str,
        call_sid: str,
        bad_signature: bool,
    ) -> None:
        self.target, self.http = target, http
        self.account_sid = new_sid("AC")
        self.stream_sid = new_sid("MZ")
        self.form = call_form(call_sid, to, from_, self.account_sid)
        self.record = CallRecord(call_sid=call_sid, to=to)
        self.bad_signature = bad_signature
        self.record_timing = False

    def sign(self, url: str, params: dict[str, str]) -> str:
        token = self.target.auth_token + ("x" if self.bad_signature else "")
        return compute_signature(token, url, params)

    async def run(self, script: CallScript) -> None:
        url = self.target.public_url.rstrip("/") + "/voice"
        async with self.http.post(
            self.target.local(url),
            data=self.form,
            headers={"X-Twilio-Signature": self.sign(url, self.form)},
        ) as r:
            self.record.webhook_status = r.status
            self.record.twiml = await r.text()
        if self.record.webhook_status != 200 or not self._follow_twiml():
            return
        headers = {"x-twilio-signature": self.sign(self.record.stream_url, {})}
        try:
            ws = await self.http.ws_connect(
                self.target.local(self.record.stream_url), headers=headers, autoping=True
            )
        except aiohttp.WSServerHandshakeError as exc:
            self.record.ws_status = exc.status
            return
        async with ws:
            caller = MediaStreamCaller(self.record, self.account_sid, self.stream_sid)
            caller.record_timing = self.record_timing
            await caller.run(ws, script)
        self.record.ended_at = time.monotonic()
        if self.record.action_url:  # Twilio requests it however the stream ended (§0.5)
            with contextlib.suppress(aiohttp.ClientError):  # e.g. the server has gone
                await self._post_action()

    def _follow_twiml(self) -> bool:
        """Read ``<Connect action><Stream url>``; False for any other TwiML (e.g. a refusal)."""
        root = ET.fromstring(self.record.twiml)
        connect = root.find("Connect")
        stream = connect.find("Stream") if connect is not None else None
        if connect is None or stream is None:
            return False
        self.record.action_url = connect.get("action", "")
        self.record.stream_url = stream.get("url", "")
        self.record.parameters = {
            p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")
        }
        return True

    async def _post_action(self) -> None:
        status = "in-progress" if self.record.closed_by == "server" else "completed"
        form = dict(self.form, CallStatus=status)
        url = self.record.action_url
        async with self.http.post(
            self.target.local(url), data=form, headers={"X-Twilio-Signature": self.sign(url, form)}
        ) as r:
            self.record.action_status = r.status
            self.record.action_twiml = await r.text()
