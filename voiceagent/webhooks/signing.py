"""Webhook signatures: `X-Voiceagent-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`.

The HMAC is taken under WEBHOOK_SIGNING_SECRET over `"<t>.<raw body>"`, so a receiver checks
the exact bytes it received and the time they were signed (a replayed old request fails).
No I/O; `verify_signature` is public for receivers written in Python.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Voiceagent-Signature"
EVENT_ID_HEADER = "X-Voiceagent-Event-Id"
TOLERANCE_S = 300.0
"""How old (or how far in the future) a signature may be and still verify."""
_MAX_HEADER = 1024


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, now: float | None = None) -> str:
    """The signature header's value for `body`, signed now (or at `now`)."""
    timestamp = int(time.time() if now is None else now)
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify_signature(
    secret: str,
    body: bytes,
    header: str | None,
    *,
    tolerance_s: float = TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Whether `header` (the X-Voiceagent-Signature value) signs `body` under `secret`,
    within `tolerance_s` of now. Any `v1=` entry may match (secrets being rotated)."""
    if not secret or not header or len(header) > _MAX_HEADER:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = _digest(secret, timestamp, body)
    return any(hmac.compare_digest(expected, c) for c in candidates)
