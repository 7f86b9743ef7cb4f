"""Running an HTTP tool: one bounded request, a JSON answer or a short recoverable error.

``build_request`` is pure (URL placeholders, query or JSON body, headers with secrets read
from the environment at call time). ``HttpToolRunner`` sends it with the app's aiohttp
session: the whole exchange (connect, headers, body) within the tool's ``timeout_s``, no
redirects (a redirect must not carry our headers elsewhere), at most ``max_response_bytes``.
Every failure becomes a ``ToolResult`` the model can recover from; nothing raises but
cancellation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit

import aiohttp
import orjson

from voiceagent.logging import clip
from voiceagent.tools.calls import ToolCall, ToolOutcome, ToolResult, failed
from voiceagent.tools.spec import HttpToolSpec, url_placeholders

USER_AGENT = "voiceagent-tools/1"
_QUERY_METHODS = frozenset({"GET", "DELETE"})


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What will be sent; ``headers`` may hold secrets: never log it whole."""

    method: str
    url: str
    params: dict[str, str]
    json: dict[str, Any] | None
    headers: dict[str, str]


def build_request(
    spec: HttpToolSpec, arguments: Mapping[str, Any], environ: Mapping[str, str]
) -> HttpRequest:
    """The request for validated ``arguments``: ``{name}`` URL placeholders first (quoted, so
    an argument can never change the host or path structure), the rest as the query (GET,
    DELETE) or the JSON body. Raises ``UnsafeArgument`` for a path segment argument that is
    empty, ``.`` or ``..``, or a URL whose scheme, host, port or segment count changed."""
    url, rest = spec.url, dict(arguments)
    for name in dict.fromkeys(url_placeholders(spec.url)):
        filled = quote(_text(rest.pop(name, "")), safe="")
        if filled in _DOT_SEGMENTS and f"/{{{name}}}" in spec.url:
            raise UnsafeArgument(f"{name} may not be empty, '.' or '..'")
        url = url.replace("{" + name + "}", filled)
    if _shape(urlsplit(url)) != _shape(urlsplit(spec.url)):
        raise UnsafeArgument("the arguments would change the tool's URL")
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    for header, value in spec.headers.items():
        resolved = value if isinstance(value, str) else value.resolve(environ)
        if resolved is not None:
            headers[header] = resolved
    if spec.method in _QUERY_METHODS:
        params = {k: _text(v) for k, v in rest.items() if v is not None}
        return HttpRequest(spec.method, url, params, None, headers)
    return HttpRequest(spec.method, url, {}, rest, headers)


_DOT_SEGMENTS = frozenset({"", ".", ".."})


class UnsafeArgument(ValueError):
    """An argument that would change the tool URL's host or path structure."""


def _shape(parts: SplitResult) -> tuple[object, ...]:
    """What no argument may change: scheme, host, port, path segments and query pairs."""
    query = len(parts.query.split("&")) if parts.query else 0
    return (parts.scheme, parts.hostname, parts.port, parts.path.count("/"), query, parts.fragment)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


class HttpToolRunner:
    """Sends HTTP tool requests with an injected ``aiohttp.ClientSession``."""

    def __init__(self, http: aiohttp.ClientSession, environ: Mapping[str, str]) -> None:
        self.http = http
        self.environ = environ

    async def run(
        self, spec: HttpToolSpec, call: ToolCall, arguments: Mapping[str, Any]
    ) -> ToolResult:
        try:
            request = build_request(spec, arguments, self.environ)
        except UnsafeArgument as exc:
            return failed(
                call, ToolOutcome.INVALID_ARGUMENTS, f"{spec.name}: {exc}.", detail=str(exc)
            )
        try:
            async with asyncio.timeout(spec.timeout_s):
                status, body = await self._send(request, spec.max_response_bytes)
        except TimeoutError:
            return failed(
                call, ToolOutcome.TIMEOUT,
                f"{spec.name} did not answer within {spec.timeout_s:g} s. Tell the caller you "
                "could not check right now; you may offer to try again.",
                detail=f"timeout after {spec.timeout_s:g} s",
            )  # fmt: skip
        except _TooLarge:
            return failed(
                call, ToolOutcome.BAD_RESPONSE, f"{spec.name} answered with too much data.",
                detail=f"response over {spec.max_response_bytes} bytes",
            )  # fmt: skip
        except aiohttp.ClientError as exc:
            return failed(
                call, ToolOutcome.UNREACHABLE, f"{spec.name} could not be reached right now.",
                detail=clip(f"{type(exc).__name__}: {exc}", 200),
            )  # fmt: skip
        return _result(spec, call, status, body)

    async def _send(self, request: HttpRequest, limit: int) -> tuple[int, bytes]:
        async with self.http.request(
            request.method, request.url, params=request.params or None, json=request.json,
            headers=request.headers, allow_redirects=False,
        ) as response:  # fmt: skip
            if (response.content_length or 0) > limit:
                raise _TooLarge
            body = bytearray()
            async for chunk in response.content.iter_chunked(8192):
                body += chunk
                if len(body) > limit:
                    raise _TooLarge
            return response.status, bytes(body)


class _TooLarge(Exception):
    pass


def _result(spec: HttpToolSpec, call: ToolCall, status: int, body: bytes) -> ToolResult:
    if not 200 <= status < 300:
        said = clip(body.decode("utf-8", errors="replace").strip(), 200)
        return failed(
            call, ToolOutcome.HTTP_ERROR,
            f"{spec.name} failed (HTTP {status})" + (f": {said}" if said else "."),
            detail=f"HTTP {status}",
        )  # fmt: skip
    try:
        answer = orjson.loads(body) if body.strip() else None
    except orjson.JSONDecodeError:
        return failed(
            call, ToolOutcome.BAD_RESPONSE, f"{spec.name} gave an answer that could not be read.",
            detail="response is not JSON",
        )  # fmt: skip
    output = orjson.dumps(answer if answer is not None else {"ok": True}).decode()
    return ToolResult(call, ToolOutcome.OK, output, detail=f"HTTP {status}")
