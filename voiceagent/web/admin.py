"""Operator endpoints: `GET /metrics` (Prometheus) and `POST /admin/reload` (bearer token).

`/metrics` is served on the public port, or, with METRICS_PORT set, only by `metrics_app` on
a separate internal listener (the Prometheus-exporter convention).
"""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from voiceagent.errors import ConfigError
from voiceagent.logging import get_logger
from voiceagent.web.keys import SERVICES

log = get_logger("voiceagent.web")


def _exposition(app: web.Application) -> web.Response:
    registry = app[SERVICES].metrics
    if registry is None:
        raise web.HTTPNotFound(text="metrics are disabled")
    return web.Response(body=registry.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def metrics(request: web.Request) -> web.Response:
    """The app's Prometheus registry in the text exposition format."""
    return _exposition(request.app)


def metrics_app(app: web.Application) -> web.Application:
    """An app serving only `GET /metrics` of `app`, for the internal listener (METRICS_PORT)."""

    async def internal_metrics(request: web.Request) -> web.Response:
        return _exposition(app)

    internal = web.Application()
    internal.router.add_get("/metrics", internal_metrics)
    return internal


def _authorized(request: web.Request, token: str) -> bool:
    # Header bytes that are not UTF-8 arrive as surrogate escapes; they simply do not match.
    given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
    return hmac.compare_digest(given, f"Bearer {token}".encode())


async def admin_reload(request: web.Request) -> web.Response:
    """Re-read the per-number YAML for new calls; 404 while ADMIN_TOKEN is unset.

    Answers `{"config_version": n}`, or 400 with the ConfigError (the old config stays).
    """
    services = request.app[SERVICES]
    token = services.settings.admin_token
    if not token:
        raise web.HTTPNotFound(text="admin endpoints are disabled (ADMIN_TOKEN is empty)")
    if not _authorized(request, token):
        log.warning("admin_unauthorized", path=request.path, remote=request.remote)
        raise web.HTTPUnauthorized(
            text="missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    try:
        version = services.config.reload(services.settings.config_path)
    except ConfigError as exc:
        return web.json_response({"error": str(exc), "path": exc.path}, status=400)
    return web.json_response({"config_version": version})
