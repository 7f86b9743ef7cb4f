"""``X-Twilio-Signature``: compute it (simulated Twilio) and verify it (server), docs/protocols.md,
Twilio §3.

Twilio signs the URL it requested plus, for form POSTs, the sorted form params; WebSocket
upgrades are signed over the ``wss://`` URL with no params. Behind proxies the request's own
URL is not what Twilio signed, so the verifier rebuilds every URL from the configured public
base URL and the raw (still percent-encoded) path and query of the request.

A WebSocket upgrade's signature covers a fixed URL, so it can be replayed; the per-call stream
token (an HMAC of the CallSid with the auth token, sent back to us in the TwiML's
``<Parameter>``s) proves that a stream belongs to a call ``/voice`` answered, on any instance.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from typing import Any

from twilio.request_validator import RequestValidator

CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
STREAM_TOKEN_BYTES = 16  # 128 bits: 22 url-safe characters
_STREAM_TOKEN_CONTEXT = b"voiceagent-stream-token:"


def is_call_sid(value: str) -> bool:
    """True for a Twilio CallSid: ``CA`` and 32 hex digits."""
    return CALL_SID.fullmatch(value) is not None


BOUND_PARAMETERS = ("number", "mode", "arm", "attempt", "failover_from")
"""The `<Parameter>`s a stream token also vouches for: changing one voids the token."""


def stream_token(
    auth_token: str, call_sid: str, parameters: Mapping[str, str] | None = None
) -> str:
    """The per-call stream token: HMAC-SHA256 of the CallSid and the BOUND_PARAMETERS values
    among ``parameters`` (each as ``NUL name = value``; an absent or empty one adds nothing),
    keyed with the auth token.

    Url-safe base64 without padding, truncated to 128 bits; any instance holding the auth
    token can check it, with no shared state.
    """
    message = _STREAM_TOKEN_CONTEXT + _raw(call_sid)
    for name in BOUND_PARAMETERS:
        value = (parameters or {}).get(name)
        if value:
            message += b"\x00" + name.encode() + b"=" + _raw(value)
    digest = hmac.new(auth_token.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:STREAM_TOKEN_BYTES]).rstrip(b"=").decode("ascii")


def verify_stream_token(
    auth_token: str, call_sid: str, token: str | None, parameters: Mapping[str, str] | None = None
) -> bool:
    """Whether ``token`` is the stream token of ``call_sid`` with these ``parameters``
    (constant-time comparison)."""
    if not token or not token.isascii():
        return False
    expected = stream_token(auth_token, call_sid, parameters).encode()
    return hmac.compare_digest(expected, token.encode())


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def compute_signature(
    auth_token: str, url: str, params: Mapping[str, str | Sequence[str]] | None = None
) -> str:
    """The signature Twilio sends for ``url`` and form ``params`` (stdlib only, §3.6).

    Params are appended as ``name + value`` in sorted name order, each name's distinct values
    sorted, then HMAC-SHA1 with the auth token, base64-encoded.
    """
    signed = url
    for name in sorted(params or {}):
        value = (params or {})[name]
        values = [value] if isinstance(value, str) else list(value)
        for item in sorted(set(values)):
            signed += name + item
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


class SignatureVerifier:
    """Verifies Twilio signatures against URLs rebuilt from the public base URL."""

    def __init__(self, auth_token: str, public_url: str) -> None:
        self._validator = RequestValidator(auth_token)
        self._https_base = public_url.rstrip("/")
        scheme, sep, rest = self._https_base.partition("://")
        ws_scheme = {"https": "wss", "http": "ws"}.get(scheme.lower(), scheme)
        self._wss_base = f"{ws_scheme}{sep}{rest}"

    def https_url(self, path_qs: str) -> str:
        """The public URL Twilio requested for ``path_qs``: the raw path and query as sent
        (``request.raw_path``, still percent-encoded), which is what Twilio signed."""
        return self._https_base + _rooted(path_qs)

    def wss_url(self, path: str) -> str:
        """The public WebSocket URL (``wss://`` for an ``https://`` base) of ``path``."""
        return self._wss_base + _rooted(path)

    def verify_webhook(self, path_qs: str, form: Mapping[str, Any], signature: str | None) -> bool:
        """Check a form-encoded webhook; ``form`` may be a MultiDict (duplicate keys: getall).

        Input no Twilio request has (bytes that are not UTF-8, non-text values) does not verify.
        """
        if not signature:
            return False
        try:
            return bool(self._validator.validate(self.https_url(path_qs), form, signature))
        except (UnicodeError, TypeError):
            return False

    def verify_upgrade(self, path: str, signature: str | None) -> bool:
        """Check a WebSocket upgrade: signed over the ``wss://`` URL with no params."""
        if not signature:
            return False
        return bool(self._validator.validate(self.wss_url(path), {}, signature))


def _rooted(path: str) -> str:
    return path if path.startswith("/") else "/" + path
