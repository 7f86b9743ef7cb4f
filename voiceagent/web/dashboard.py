"""`GET /dashboard`: the HTML report of this server's records, live, with its active calls per
mode and the Realtime sessions in use. For operators only.

- 404 while `ADMIN_TOKEN` is unset (like `/admin/reload`): no dashboard on an open port.
- Signed in means `Authorization: Bearer ADMIN_TOKEN`, or the HttpOnly, SameSite=Strict
  cookie that `POST /dashboard/login` (the token typed into the 401 page's form) sets: an
  expiry and its HMAC under the token, so it holds no secret and dies with a token change.
- The page polls `GET /dashboard/data` (same sign-in) every `REFRESH_S`; the records are read
  again at most every `REPORT_EVERY_S` for all viewers, and the statistics run in a thread so
  calls on this event loop do not wait for them. `?since=7d` widens the window (default 24h).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from voiceagent.config import ModeName
from voiceagent.logging import clip, get_logger
from voiceagent.protocols.signature import is_call_sid
from voiceagent.report.command import parse_since
from voiceagent.report.html import render_html
from voiceagent.report.page import build_page, load_records
from voiceagent.report.story import story_html
from voiceagent.runtime import Services
from voiceagent.store.records.call_story import load_story
from voiceagent.store.records.schema import make_engine
from voiceagent.web.keys import SERVICES
from voiceagent.web.login_throttle import LoginThrottle

log = get_logger("voiceagent.web")
COOKIE = "voiceagent_dashboard"
SESSION_S = 12 * 3600
REFRESH_S = 10
REPORT_EVERY_S = 30.0
DEFAULT_SINCE = "24h"
MAX_SINCE_CHARS = 64
_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer"}  # fmt: skip
_LOGIN = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; form-action 'self'">
<title>voiceagent dashboard: sign in</title>
<style>body{font:15px system-ui;margin:48px}</style></head>
<body><h1>voiceagent dashboard</h1><form method="post" action="/dashboard/login">
<label>Admin token
<input type="password" name="token" autocomplete="current-password" autofocus></label>
<button type="submit">Sign in</button></form></body></html>"""


class Dashboard:
    """The records engine (opened on first use) and the last report, shared by viewers."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._engine: AsyncEngine | None = None
        self._lock = asyncio.Lock()
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self.report_every_s = REPORT_EVERY_S

    async def report(self, since: str) -> dict[str, Any]:
        """The page data for `since`, at most REPORT_EVERY_S old."""
        url = self.services.settings.database_url
        if not url:
            return {"numbers": [], "calls": 0, "turns": 0, "generated_at": _now(),
                    "since": None, "source": "no records: DATABASE_URL is empty"}  # fmt: skip
        async with self._lock:
            cached = self._cache.get(since)
            if cached is not None and time.monotonic() - cached[0] < self.report_every_s:
                return cached[1]
            if self._engine is None:
                self._engine = make_engine(url)
            records = await load_records(self._engine, since=parse_since(since),
                                         run_migrations=False)  # fmt: skip
            config = self.services.config.current
            data = await asyncio.to_thread(build_page, records, config=config,
                                           source="this server's records")  # fmt: skip
            self._cache = {since: (time.monotonic(), data)}
            return data

    async def story(self, call_sid: str) -> dict[str, Any] | None:
        """One call's records (None: no such call, or no records database)."""
        url = self.services.settings.database_url
        if not url:
            return None
        if self._engine is None:
            self._engine = make_engine(url)
        return await load_story(self._engine, call_sid)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()


DASHBOARD = web.AppKey("dashboard", Dashboard)
LOGIN_THROTTLE = web.AppKey("login_throttle", LoginThrottle)


def add_dashboard(app: web.Application) -> None:
    """Register the dashboard's routes (and its engine's lifetime) on the app."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        app[DASHBOARD] = dashboard = Dashboard(app[SERVICES])
        yield
        await dashboard.close()

    app.cleanup_ctx.append(lifetime)
    app[LOGIN_THROTTLE] = LoginThrottle()
    app.router.add_get("/dashboard", dashboard_page, name="dashboard")
    app.router.add_get("/dashboard/data", dashboard_data, name="dashboard_data")
    app.router.add_post("/dashboard/login", dashboard_login)
    app.router.add_get("/dashboard/calls/{call_sid}", dashboard_call)


async def dashboard_page(request: web.Request) -> web.Response:
    """The report page with the live panel; the sign-in form (401) without a token."""
    if not _signed_in(request, _admin_token(request)):
        return web.Response(text=_LOGIN, status=401, content_type="text/html",
                            headers={**_HEADERS, "WWW-Authenticate": "Bearer"})  # fmt: skip
    since = _since(request)
    data = await _data(request, since)
    data["refresh"] = {"url": f"/dashboard/data?since={quote(since)}", "every_s": REFRESH_S}
    data["call_link"] = "/dashboard/calls/"
    page = render_html(data, title="voiceagent dashboard")
    return web.Response(text=page, content_type="text/html", headers=_HEADERS)


async def dashboard_call(request: web.Request) -> web.Response:
    """One call's whole story (`voiceagent calls show` as a page); same sign-in."""
    if not _signed_in(request, _admin_token(request)):
        return web.Response(text=_LOGIN, status=401, content_type="text/html",
                            headers={**_HEADERS, "WWW-Authenticate": "Bearer"})  # fmt: skip
    call_sid = request.match_info["call_sid"]
    if not is_call_sid(call_sid):
        raise web.HTTPBadRequest(text="not a CallSid")
    story = await request.app[DASHBOARD].story(call_sid)
    if story is None:
        raise web.HTTPNotFound(text="no such call in the records")
    return web.Response(text=story_html(story), content_type="text/html", headers=_HEADERS)


async def dashboard_data(request: web.Request) -> web.Response:
    """The page's data as JSON (report and live panel), for its refresh."""
    if not _signed_in(request, _admin_token(request)):
        raise web.HTTPUnauthorized(text="sign in first", headers={"WWW-Authenticate": "Bearer"})
    return web.json_response(await _data(request, _since(request)), headers=_HEADERS)


async def dashboard_login(request: web.Request) -> web.Response:
    """Check the typed token; on success set the session cookie and go to the dashboard."""
    token = _admin_token(request)
    throttle, remote = request.app[LOGIN_THROTTLE], request.remote or "?"
    wait_s = throttle.retry_after(remote)
    if wait_s > 0:
        log.warning("dashboard_login_throttled", remote=remote)
        raise web.HTTPTooManyRequests(
            text="too many failed sign-ins; try again later",
            headers={**_HEADERS, "Retry-After": str(math.ceil(wait_s))},
        )
    try:
        given = str((await request.post()).get("token", ""))
    except (UnicodeDecodeError, ValueError) as exc:
        raise web.HTTPBadRequest(text="the sign-in form could not be read") from exc
    if not hmac.compare_digest(_raw(given), token.encode()):
        throttle.failed(remote)
        log.warning("dashboard_login_failed", remote=remote)
        return web.Response(text=_LOGIN, status=401, content_type="text/html", headers=_HEADERS)
    response = web.Response(status=303, headers={**_HEADERS, "Location": "/dashboard"})
    expires = int(time.time()) + SESSION_S
    # Secure whenever the public URL is https: a spoofable X-Forwarded-Proto decides nothing.
    secure = request.app[SERVICES].settings.public_url.startswith("https://")
    response.set_cookie(COOKIE, f"{expires}.{_sign(token, expires)}", max_age=SESSION_S,
                        path="/dashboard", httponly=True, samesite="Strict",
                        secure=secure)  # fmt: skip
    log.info("dashboard_login", remote=request.remote)
    return response


async def _data(request: web.Request, since: str) -> dict[str, Any]:
    services = request.app[SERVICES]
    try:
        data = dict(await request.app[DASHBOARD].report(since))
    except (SQLAlchemyError, OSError) as exc:
        log.error("dashboard_records_failed", error=str(exc), exc_info=True)
        data = {"numbers": [], "calls": 0, "turns": 0, "generated_at": _now(), "since": since,
                "source": f"records unavailable: {type(exc).__name__}"}  # fmt: skip
    data["live"] = await live(services)
    data["call_link"] = "/dashboard/calls/"
    return data


async def live(services: Services) -> dict[str, Any]:
    """Active calls per mode on this instance, and the Realtime sessions in use."""
    modes = {mode.value: services.calls.count(mode) for mode in ModeName}
    return {
        "active_calls": modes,
        "active_total": services.calls.count(),
        "realtime_sessions": await realtime_sessions(services),
        "draining": services.calls.draining,
        "config_version": services.config.version,
        "at": _now(),
    }


async def realtime_sessions(services: Services) -> dict[str, Any]:
    """Realtime sessions in use: the shared session budget's leases (every instance) when the
    app holds one (`services.stores.budget`, see store/factory.py), else this instance's
    active realtime calls."""
    budget = getattr(getattr(services, "stores", None), "budget", None)
    if budget is not None:
        try:
            in_use = int(await asyncio.wait_for(budget.in_use(), 2.0))
        except (TimeoutError, OSError):
            in_use = int(budget.last_in_use)
        return {"in_use": in_use, "limit": budget.cap, "source": "session budget, all instances"}
    count = sum(services.calls.count(name) for name in services.modes.holding_realtime_sessions())
    return {"in_use": count, "limit": None, "source": "active realtime calls on this instance"}


def _admin_token(request: web.Request) -> str:
    token = request.app[SERVICES].settings.admin_token
    if not token:
        raise web.HTTPNotFound(text="admin endpoints are disabled (ADMIN_TOKEN is empty)")
    return token


def _signed_in(request: web.Request, token: str) -> bool:
    """The bearer or the cookie is right; any other bytes (non-ASCII, not UTF-8, a number no
    clock reaches) simply do not match."""
    bearer = _raw(request.headers.get("Authorization", ""))
    if hmac.compare_digest(bearer, f"Bearer {token}".encode()):
        return True
    expires, _, mac = request.cookies.get(COOKIE, "").partition(".")
    if not _EXPIRY.fullmatch(expires) or int(expires) < time.time():
        return False
    return hmac.compare_digest(_raw(mac), _sign(token, int(expires)).encode())


_EXPIRY = re.compile(r"[0-9]{1,12}", re.ASCII)


def _raw(text: str) -> bytes:
    """A peer's text as bytes for a constant-time comparison: bytes that were not UTF-8 arrive
    as surrogates and are kept as such (they can never equal a real token)."""
    return text.encode("utf-8", "surrogatepass")


def _sign(token: str, expires: int) -> str:
    return hmac.new(token.encode(), f"dashboard:{expires}".encode(), hashlib.sha256).hexdigest()


def _since(request: web.Request) -> str:
    since = request.query.get("since", DEFAULT_SINCE)
    if len(since) > MAX_SINCE_CHARS:
        raise web.HTTPBadRequest(text=f"since: at most {MAX_SINCE_CHARS} characters")
    try:
        parse_since(since)
    except (ValueError, OverflowError) as exc:
        raise web.HTTPBadRequest(text=clip(exc, 200)) from exc
    return since


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
