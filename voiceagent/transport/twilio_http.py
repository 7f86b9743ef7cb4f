"""The HTTP client the twilio package's REST ``Client`` uses: ours, on aiohttp, never blocking.

A custom ``twilio.http.AsyncHttpClient`` is twilio-python's documented extension point for
the transport. This one sends every request on one aiohttp session (no thread, no blocking
call on the event loop), sends list parameters as repeated form fields like Twilio expects,
and moves the twilio package's ``https://api.twilio.com`` onto ``TWILIO_API_BASE_URL`` so that
tests and ``simulate`` can talk to the fake Twilio REST API of ``voiceagent/sim/``.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from urllib.parse import urlsplit

import aiohttp
from twilio.http import AsyncHttpClient
from twilio.http.response import Response

TWILIO_API = "https://api.twilio.com"

FormItems = list[tuple[str, str]]


def form_items(values: Mapping[str, object] | None) -> FormItems | None:
    """Form or query fields: None values dropped, lists as repeated fields, in order."""
    if not values:
        return None
    items: FormItems = []
    for name, value in values.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if item is not None:
                items.append((name, str(item)))
    return items


def basic_auth(auth: tuple[str, str] | None) -> dict[str, str]:
    """The ``Authorization: Basic`` header for ``(user, password)``; none without."""
    if auth is None:
        return {}
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def rebase(url: str, base_url: str) -> str:
    """``url`` on ``base_url`` when it points at Twilio's REST API (others unchanged)."""
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" != TWILIO_API:
        return url
    tail = url[len(TWILIO_API) :]
    return base_url.rstrip("/") + tail


class AiohttpTwilioHttp(AsyncHttpClient):  # type: ignore[misc]  # twilio ships no stubs
    """twilio-python's async transport on one aiohttp session, aimed at ``base_url``."""

    def __init__(self, base_url: str = TWILIO_API, timeout: float = 10.0) -> None:
        super().__init__(logging.getLogger("voiceagent.twilio_http"), True, timeout)
        self.base_url = base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    async def request(
        self,
        method: str,
        uri: str,
        params: Mapping[str, object] | None = None,
        data: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the twilio package's signature)
        allow_redirects: bool = False,
    ) -> Response:
        """One request; the twilio package turns a 4xx/5xx answer into TwilioRestException."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        total = timeout if timeout is not None else self.timeout
        async with self._session.request(
            method.upper(), rebase(uri, self.base_url), params=form_items(params),
            data=form_items(data), headers=dict(headers or {}) | basic_auth(auth),
            timeout=aiohttp.ClientTimeout(total=total), allow_redirects=allow_redirects,
        ) as resp:  # fmt: skip
            text = await resp.text()
            return Response(resp.status, text, resp.headers)

    async def close(self) -> None:
        """Close the session (the client is unusable afterwards until the next request)."""
        if self._session is not None:
            await self._session.close()
            self._session = None
