"""What a rejected signature is logged with: the URL it was checked against and the forwarding
headers the request came with, the first things to compare behind a proxy or tunnel.

Never logged: the auth token, the signature, client addresses (`X-Forwarded-For`, `for=`).
"""

from __future__ import annotations

import re

from aiohttp import web

from voiceagent.logging import clip

FORWARDING_HEADERS = ("Host", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port")
_FOR = re.compile(r"\s*for=[^;,]*;?", re.IGNORECASE)


def rejection_fields(request: web.Request, checked_url: str) -> dict[str, object]:
    """Key/value fields for `signature_rejected`: what was checked, and what the proxy said."""
    fields: dict[str, object] = {
        "checked_url": clip(checked_url, 300),
        "has_signature": "X-Twilio-Signature" in request.headers,
    }
    for name in FORWARDING_HEADERS:
        value = request.headers.get(name)
        if value is not None:
            fields[name.lower().replace("-", "_")] = clip(value, 200)
    forwarded = request.headers.get("Forwarded")
    if forwarded is not None:
        fields["forwarded"] = clip(_FOR.sub("", forwarded).strip(" ;,"), 200)
    return fields
