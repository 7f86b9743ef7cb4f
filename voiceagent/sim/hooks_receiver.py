"""A business's webhook receiver, for tests, `simulate` and benchmarks: a real aiohttp server.

`POST /context` answers the call-context webhook (a fixed answer, or raw bytes, after
`context_delay_s`); `POST /events` takes call events, verifying each signature with the shared
secret like a real receiver would (`voiceagent.webhooks.verify_signature`) and deduplicating by
`X-Voiceagent-Event-Id`. `events_status` makes it answer e.g. 503; `hold_events` keeps event
requests waiting (a slow receiver); `stop()` / `start()` on the same port make it go down and
come back. It records what it received so tests can assert on it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from voiceagent.webhooks.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, verify_signature

GREET_BY_NAME: dict[str, Any] = {
    "variables": {"first_name": "Ada", "open_order": "A-1042"},
    "greeting": "Hello {{first_name}}! Calling about order {{open_order}}?",
}
"""The context answer of a CRM that knows the caller: greets by name."""


@dataclass
class Delivery:
    """One event request as received."""

    event_id: str
    verified: bool
    payload: dict[str, Any]


@dataclass
class HooksReceiver:
    """The business's side of voiceagent's webhooks."""

    secret: str
    context_answer: dict[str, Any] | bytes = field(default_factory=lambda: dict(GREET_BY_NAME))
    context_status: int = 200
    context_delay_s: float = 0.0
    events_status: int = 200
    hold_events: asyncio.Event | None = None
    contexts: list[dict[str, Any]] = field(default_factory=list)
    context_verified: list[bool] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    arrived: int = 0
    """Event requests that reached the receiver (held ones included)."""
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    port: int = 0
    _runner: web.AppRunner | None = None
    _news: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def context_url(self) -> str:
        return self.base_url + "/context"

    @property
    def events_url(self) -> str:
        return self.base_url + "/events"

    async def start(self, port: int | None = None) -> HooksReceiver:
        app = web.Application()
        app.router.add_post("/context", self._context)
        app.router.add_post("/events", self._event)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port if port is not None else self.port)
        await site.start()
        if not self.port:
            self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _context(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.context_verified.append(
            verify_signature(self.secret, body, request.headers.get(SIGNATURE_HEADER))
        )
        self.contexts.append(orjson.loads(body))
        if self.context_delay_s:
            await asyncio.sleep(self.context_delay_s)
        answer = self.context_answer
        raw = answer if isinstance(answer, bytes) else orjson.dumps(answer)
        return web.Response(body=raw, status=self.context_status, content_type="application/json")

    async def _event(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.arrived += 1
        self._news.set()
        if self.hold_events is not None:
            await self.hold_events.wait()
        verified = verify_signature(self.secret, body, request.headers.get(SIGNATURE_HEADER))
        event_id = request.headers.get(EVENT_ID_HEADER, "")
        payload = orjson.loads(body)
        self.deliveries.append(Delivery(event_id, verified, payload))
        self._news.set()
        if self.events_status >= 300:
            return web.Response(status=self.events_status)
        if verified:
            self.events.setdefault(event_id, payload)  # deduplicated by event id
        return web.Response(status=200 if verified else 401)

    async def wait_arrived(self, count: int, within: float = 20.0) -> None:
        """Until `count` event requests arrived (answered or still held)."""
        async with asyncio.timeout(within):
            while self.arrived < count:
                self._news.clear()
                await self._news.wait()

    async def wait_deliveries(self, count: int, within: float = 20.0) -> list[Delivery]:
        """Every event request received once there are `count` (TimeoutError otherwise)."""
        async with asyncio.timeout(within):
            while len(self.deliveries) < count:
                self._news.clear()
                await self._news.wait()
        return self.deliveries

    async def wait_events(self, count: int, within: float = 20.0) -> dict[str, dict[str, Any]]:
        """The accepted events once there are `count` of them (TimeoutError otherwise)."""
        async with asyncio.timeout(within):
            while len(self.events) < count:
                self._news.clear()
                await self._news.wait()
        return self.events
