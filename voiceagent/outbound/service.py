"""What an app needs for outbound calls: the REST seam, the shared outbound store, the pacer,
the dialer and the outbound metrics. Built in the app's cleanup context (``web/outbound.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from voiceagent.errors import ConfigError
from voiceagent.logging import get_logger
from voiceagent.outbound.dialer import Dialer
from voiceagent.outbound.legs import ANSWERED_BY
from voiceagent.outbound.pacing import MemoryPacer, Pacer, RedisPacer
from voiceagent.runtime import Services
from voiceagent.store.live.outbound_state import (
    FINAL_STATUSES,
    MemoryOutboundStore,
    OutboundStore,
    RedisOutboundStore,
)
from voiceagent.transport.twilio_rest import TwilioRest, TwilioRestClient, credentials_from

log = get_logger("voiceagent.outbound")


class OutboundMetrics:
    """Dials by result and ended outbound calls by status and AMD verdict, per number/arm."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        r = registry or CollectorRegistry()
        self.dials = Counter(
            "voiceagent_outbound_dials", "Outbound dials: placed, or refused and why.",
            ("number", "result"), registry=r,
        )  # fmt: skip
        self.outcomes = Counter(
            "voiceagent_outbound_calls",
            "Outbound calls ended, by Twilio's final status and AMD's answered_by.",
            ("number", "arm", "status", "answered_by"), registry=r,
        )  # fmt: skip

    def dial(self, number: str, result: str) -> None:
        self.dials.labels(number[:20], result).inc()

    def ended(self, number: str, arm: str | None, status: str, answered_by: str | None) -> None:
        status = status if status in FINAL_STATUSES else "other"
        verdict = answered_by if answered_by in ANSWERED_BY else "none"
        self.outcomes.labels(number[:20], arm or "", status, verdict).inc()


@dataclass
class Outbound:
    """The outbound side of one app; ``rest``/``dialer`` are None without Twilio credentials
    (then ``/calls`` answers 503 and says which settings are missing)."""

    store: OutboundStore
    metrics: OutboundMetrics
    rest: TwilioRest | None = None
    dialer: Dialer | None = None
    disabled_because: str = ""

    async def close(self) -> None:
        if self.rest is not None:
            await self.rest.close()
        await self.store.close()


def make_outbound(services: Services, rest: TwilioRest | None = None) -> Outbound:
    """The outbound side for ``services`` (``rest`` injected by tests, else from settings)."""
    settings, backend = services.settings, services.stores.backend
    store: OutboundStore = (
        RedisOutboundStore(backend) if backend is not None else MemoryOutboundStore()
    )
    registry = services.metrics.registry if services.metrics is not None else None
    outbound = Outbound(store, OutboundMetrics(registry))
    if rest is None and settings.twilio_account_sid:
        try:
            rest = TwilioRestClient(credentials_from(settings))
        except ConfigError as exc:
            outbound.disabled_because = str(exc)
            log.error("outbound_disabled", error=str(exc))
    elif rest is None:
        outbound.disabled_because = "TWILIO_ACCOUNT_SID is not set (outbound calls need it)"
    if rest is not None:
        pacer: Pacer = (
            RedisPacer(backend, settings.outbound_cps)
            if backend is not None
            else MemoryPacer(settings.outbound_cps)
        )
        outbound.rest = rest
        outbound.dialer = Dialer(services, rest, store, pacer)
    return outbound
