"""An in-process HTTP tool server for tests and ``voiceagent simulate``.

Endpoints an HTTP tool in the YAML can point at (``url_for(path)`` gives the full URL):

- ``GET /weather?city=Paris``: ``{"city", "forecast", "temperature_c"}``.
- ``GET /orders/{order_id}/status`` and ``POST /orders/status`` (``{"order_id"}``): a known
  order's status, 404 ``{"error": "order not found"}`` for any other.
- ``/slow`` (any method): answers after ``slow_s`` seconds (a tool timeout).
- ``/fail``: HTTP 500. ``/text``: 200 with a plain-text body. ``/big``: 200 with ~100 KB of JSON.

With ``token`` set, every endpoint wants ``Authorization: Bearer <token>`` (else 401). Every
request is recorded (method, path, query, JSON body, Authorization) for assertions.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

ORDERS = {
    "A-1234": {"status": "shipped", "eta": "tomorrow before noon"},
    "B-5678": {"status": "being packed", "eta": "in three days"},
}
FORECASTS = {"paris": ("light rain", 14), "london": ("cloudy", 11)}


@dataclass(frozen=True, slots=True)
class ToolRequest:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str | None


@dataclass
class ToolServer:
    """The server and its records; ``async with`` starts it on 127.0.0.1 (free port)."""

    token: str | None = None
    slow_s: float = 30.0
    requests: list[ToolRequest] = field(default_factory=list)
    base_url: str = ""
    _runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record_and_auth])
        app.router.add_get("/weather", self._weather)
        app.router.add_get("/orders/{order_id}/status", self._order_by_path)
        app.router.add_post("/orders/status", self._order_by_body)
        app.router.add_route("*", "/slow", self._slow)
        app.router.add_route("*", "/fail", self._fail)
        app.router.add_route("*", "/text", self._text)
        app.router.add_route("*", "/big", self._big)
        return app

    def url_for(self, path: str) -> str:
        return self.base_url + path

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.base_url = f"http://{host}:{self._runner.addresses[0][1]}"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ToolServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- handlers ------------------------------------------------------------------------------
    @web.middleware
    async def _record_and_auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw.decode("utf-8", errors="replace")
        auth = request.headers.get("Authorization")
        self.requests.append(
            ToolRequest(request.method, request.path, dict(request.query), body, auth)
        )
        if self.token is not None and auth != f"Bearer {self.token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    async def _weather(self, request: web.Request) -> web.Response:
        city = request.query.get("city", "")
        forecast, temperature = FORECASTS.get(city.lower(), ("sunny", 21))
        return web.json_response({"city": city, "forecast": forecast, "temperature_c": temperature})

    async def _order_by_path(self, request: web.Request) -> web.Response:
        return _order(request.match_info["order_id"])

    async def _order_by_body(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()  # the body read by the middleware is cached
        except ValueError:
            body = None
        return _order(str(body.get("order_id", "")) if isinstance(body, dict) else "")

    async def _slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.slow_s)
        return web.json_response({"ok": True, "late": True})

    async def _fail(self, request: web.Request) -> web.Response:
        return web.json_response({"error": "internal error"}, status=500)

    async def _text(self, request: web.Request) -> web.Response:
        return web.Response(text="all good, but not JSON")

    async def _big(self, request: web.Request) -> web.Response:
        return web.json_response({"items": ["x" * 100] * 1000})


def _order(order_id: str) -> web.Response:
    order = ORDERS.get(order_id)
    if order is None:
        return web.json_response({"error": "order not found"}, status=404)
    return web.json_response({"order_id": order_id, **order})
