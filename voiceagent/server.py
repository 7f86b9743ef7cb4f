"""Run the app: listen, reload on SIGHUP, drain gracefully on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket

from aiohttp import web

from voiceagent.app import create_app
from voiceagent.config import Config
from voiceagent.errors import ConfigError
from voiceagent.logging import get_logger
from voiceagent.settings import Settings
from voiceagent.web.admin import metrics_app
from voiceagent.web.keys import SERVICES
from voiceagent.web.read_limits import runner_options

log = get_logger("voiceagent.server")


async def serve(settings: Settings, config: Config | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then drain: refuse new calls, let calls finish, exit."""
    app = create_app(settings, config)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, **runner_options(settings))
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True)
    await site.start()
    internal = await _start_metrics_listener(app, settings)
    gc.freeze()  # startup objects leave the GC's view: no 50 ms full collections mid-call
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    services = app[SERVICES]
    loop.add_signal_handler(signal.SIGHUP, lambda: _reload(app))
    port = _port(site) or settings.port
    log.info("server_started", host=settings.host, port=port, public_url=settings.public_url)
    try:
        await stop.wait()
        services.calls.draining = True
        active = services.calls.count()
        log.info("drain_started", active_calls=active, grace_s=settings.drain_grace_seconds)
        if not await services.calls.wait_idle(settings.drain_grace_seconds):
            ended = services.calls.cancel_all()
            log.warning("drain_grace_expired", ended_calls=ended)
            await services.calls.wait_idle(5.0)
        log.info("drain_finished")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        if internal is not None:
            await internal.cleanup()
        log.info("server_stopped")


async def _start_metrics_listener(app: web.Application, settings: Settings) -> web.AppRunner | None:
    """With METRICS_PORT set, `/metrics` is served only here (METRICS_HOST, default loopback)."""
    if settings.metrics_port is None:
        return None
    runner = web.AppRunner(metrics_app(app), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.metrics_host, settings.metrics_port, reuse_address=True)
    await site.start()
    log.info("metrics_listener_started", host=settings.metrics_host, port=_port(site))
    return runner


def _port(site: web.TCPSite) -> int | None:
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or []
    ports = [s.getsockname()[1] for s in sockets if s.family in (socket.AF_INET, socket.AF_INET6)]
    return ports[0] if ports else None


def _reload(app: web.Application) -> None:
    """SIGHUP: re-read the YAML; new calls use it, calls in flight keep their plan."""
    from voiceagent.errors import ConfigError

    services = app[SERVICES]
    with contextlib.suppress(ConfigError):  # logged by reload(); the old config stays
        services.config.reload(services.settings.config_path)


def run(settings: Settings) -> None:
    """Blocking entry point with uvloop when available; exits with the message (no traceback)
    when the settings cannot be served (e.g. no TWILIO_AUTH_TOKEN)."""
    try:
        settings.require_signature_key()
    except ConfigError as exc:
        raise SystemExit(f"invalid configuration: {exc}") from None
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        asyncio.run(serve(settings))
    else:
        uvloop.run(serve(settings))
