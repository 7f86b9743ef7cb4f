"""The simulated Twilio's HTTP side of a call: where the server is, and the signed webhooks.

``SimTarget`` maps the public URLs the server writes into TwiML onto its local address;
``Webhooks`` POSTs the call's signed ``/voice`` webhook (docs/protocols.md, Twilio §4.1) and its
``<Connect action>`` callbacks, signed over the public URL as Twilio signs them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import aiohttp

from voiceagent.protocols.signature import compute_signature


@dataclass(frozen=True, slots=True)
class SimTarget:
    """Where the server listens locally, the public URL it believes in, and the auth token."""

    base_url: str  # e.g. http://127.0.0.1:8080
    public_url: str  # e.g. https://voice.example.com (what Twilio signs)
    auth_token: str

    def local(self, public: str) -> str:
        """Map a public https/wss URL from TwiML onto the local server."""
        host = self.public_url.rstrip("/").split("://", 1)[1]
        path = public.split(host, 1)[1] if host in public else public
        scheme = "ws" if public.startswith(("wss:", "ws:")) else "http"
        base = self.base_url.rstrip("/")
        return scheme + base[base.index(":") :] + path

    def public(self, path: str) -> str:
        """The public URL of ``path`` (e.g. ``/voice``)."""
        return self.public_url.rstrip("/") + path


def new_sid(prefix: str) -> str:
    """A realistic Twilio SID: two letters and 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def call_form(
    call_sid: str, to: str, from_: str, account_sid: str, direction: str = "inbound"
) -> dict[str, str]:
    """The incoming-call webhook params, as real Twilio sends them (§4.1); for a call placed
    through the REST API (``direction="outbound-api"``) ``From`` is the account's number, ``To``
    the callee, and the call is already in progress when its TwiML is requested."""
    status = "ringing" if direction == "inbound" else "in-progress"
    return {
        "CallSid": call_sid, "AccountSid": account_sid, "From": from_, "To": to,
        "CallStatus": status, "ApiVersion": "2010-04-01", "Direction": direction,
        "Caller": from_, "Called": to, "FromCountry": "US", "FromState": "CA", "FromCity": "",
        "FromZip": "", "ToCountry": "US", "ToState": "", "ToCity": "", "ToZip": "",
        "CallerCountry": "US", "CallerState": "CA", "CallerCity": "", "CallerZip": "",
        "CalledCountry": "US", "CalledState": "", "CalledCity": "", "CalledZip": "",
    }  # fmt: skip


class Webhooks:
    """Twilio's signed HTTP requests for one call (``bad_signature`` signs with a wrong token)."""

    def __init__(
        self,
        target: SimTarget,
        http: aiohttp.ClientSession,
        form: dict[str, str],
        bad_signature: bool = False,
    ) -> None:
        self.target, self.http, self.form = target, http, form
        self.bad_signature = bad_signature

    def sign(self, url: str, params: dict[str, str]) -> str:
        """Twilio's X-Twilio-Signature over the public ``url`` and POST ``params``."""
        token = self.target.auth_token + ("x" if self.bad_signature else "")
        return compute_signature(token, url, params)

    async def post(self, url: str, form: dict[str, str]) -> tuple[int, str]:
        """POST ``form`` to the public ``url`` (sent to the local server): status and body."""
        headers = {"X-Twilio-Signature": self.sign(url, form)}
        async with self.http.post(self.target.local(url), data=form, headers=headers) as resp:
            return resp.status, await resp.text()

    async def voice(self) -> tuple[int, str]:
        """The incoming-call webhook: status and TwiML."""
        return await self.post(self.target.public("/voice"), self.form)

    async def action(self, url: str, **fields: str) -> tuple[int, str]:
        """The ``<Connect action>`` callback: the call's form with ``fields`` on top."""
        return await self.post(url, {**self.form, **fields})
