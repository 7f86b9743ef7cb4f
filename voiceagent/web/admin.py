"""Operator endpoints: `GET /metrics` (Prometheus) and `POST /admin/reload` (bearer token)."""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from voiceagent.errors import ConfigError
from voiceagent.logging import get_logger
from voiceagent.web.keys import SERVICES

log = get_logger("voiceagent.web")


async def metrics(request: web.Request) -> web.Response:
    """The app's Prometheus registry in the text exposition format."""
    registry = request.app[SERVICES].metrics
    if registry is None:
        raise web.HTTPNotFound(text="metrics are disabled")
    return web.Response(body=registry.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _authorized(request: web.Request, token: str) -> bool:
    given = request.headers.get("Authorization", "").encode()
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
