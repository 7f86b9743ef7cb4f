"""The application factory: routes, typed app keys, shared services and their lifetimes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from voiceagent.config import Config, load_config
from voiceagent.logging import get_logger
from voiceagent.metrics import FanOutSink, Metrics, MetricsSink
from voiceagent.modes.realtime_passthrough import RealtimePassthrough
from voiceagent.modes.registry import ModeRegistry
from voiceagent.modes.relay_router import RelayRouter
from voiceagent.protocols.signature import SignatureVerifier
from voiceagent.runtime import ConfigHolder, Services
from voiceagent.session.call import CallSink
from voiceagent.settings import Settings
from voiceagent.store.live.factory import make_recording_sink, make_shared_stores
from voiceagent.store.records.sink import RecordingSink
from voiceagent.transport.upstream import InworldRealtime, InworldRouter
from voiceagent.web.admin import admin_reload, metrics
from voiceagent.web.clips import clip
from voiceagent.web.dashboard import add_dashboard
from voiceagent.web.keys import RECORDER, SERVICES, VERIFIER
from voiceagent.web.outbound import add_outbound
from voiceagent.web.phone_socket import phone_socket
from voiceagent.web.read_limits import read_body_within
from voiceagent.web.recording_status import recording_status
from voiceagent.web.twilio_http import voice, voice_action
from voiceagent.webhooks.service import start_webhooks

log = get_logger("voiceagent.app")


async def healthz(request: web.Request) -> web.Response:
    """Liveness and load: 200 while serving, 503 while draining."""
    services = request.app[SERVICES]
    body = {
        "status": "draining" if services.calls.draining else "ok",
        "active_calls": services.calls.count(),
        "config_version": services.config.version,
    }
    return web.json_response(body, status=503 if services.calls.draining else 200)


def create_app(settings: Settings, config: Config | None = None) -> web.Application:
    """Build the app. `config` defaults to the YAML file named by the settings.

    ConfigError without a Twilio auth token (unless signatures are skipped on purpose).
    """
    settings.require_signature_key()
    config = config if config is not None else load_config(settings.config_path)
    settings.require_webhook_secret(config.uses_webhooks(), config.uses_webhooks(events_only=True))
    modes = ModeRegistry([RealtimePassthrough(), RelayRouter()])
    app = web.Application(
        client_max_size=1024 * 1024, middlewares=[read_body_within(settings.http_body_timeout)]
    )
    app[VERIFIER] = SignatureVerifier(settings.twilio_auth_token, settings.public_url)
    holder = ConfigHolder(config)

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.upstream_connect_timeout)
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            stores = make_shared_stores(settings)
            app[SERVICES] = services = Services(
                settings=settings, config=holder, http=http, stores=stores, modes=modes,
                realtime=InworldRealtime(http, settings), router=InworldRouter(http, settings),
            )  # fmt: skip
            _warn_insecure(settings)
            recorder = services.records = _telemetry(services)
            if recorder is not None:  # outbound outcomes are records too (web/outbound.py)
                app[RECORDER] = recorder
            hooks = start_webhooks(services, recorder)
            try:
                if recorder is not None:
                    await recorder.start()
                hooks.start()
                yield
            finally:
                await hooks.stop()
                if recorder is not None:
                    await recorder.stop()
                await stores.close()

    app.cleanup_ctx.append(services_ctx)
    app.router.add_post("/voice", voice)
    app.router.add_post("/voice/action", voice_action)
    app.router.add_post("/recording-status", recording_status)
    app.router.add_get("/healthz", healthz)
    if settings.metrics_port is None:  # else only the internal listener serves it
        app.router.add_get("/metrics", metrics)
    app.router.add_post("/admin/reload", admin_reload)
    add_dashboard(app)  # GET /dashboard: ADMIN_TOKEN only, 404 without one
    app.router.add_get("/audio/{clip_id}", clip)
    add_outbound(app)  # POST /calls, /call-status (+ /amd): after the services exist
    for mode in modes:
        app.router.add_get(mode.ws_path, phone_socket(mode))
    return app


def _telemetry(services: Services) -> RecordingSink | None:
    """Prometheus metrics always; call/turn records unless DATABASE_URL is empty."""
    holder = services.config
    services.metrics = Metrics(active_calls=services.calls.count, config=lambda: holder.current)
    recorder = make_recording_sink(services.settings)
    services.metrics.watch_backends(services.stores, recorder)
    sinks: list[CallSink] = [MetricsSink(services.metrics)]
    services.sink = FanOutSink([*sinks, recorder] if recorder is not None else sinks)
    return recorder


def _warn_insecure(settings: Settings) -> None:
    if settings.insecure_skip_signature:
        log.warning(
            "signature_check_disabled",
            message="VOICEAGENT_INSECURE_SKIP_SIGNATURE is set: anyone can place calls through "
            "this server. Use it for local development only.",
        )
