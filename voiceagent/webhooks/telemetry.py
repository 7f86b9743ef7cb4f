"""Prometheus collectors of the webhooks: context outcomes, deliveries, outbox depth."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from voiceagent.webhooks.context import ContextStatus
from voiceagent.webhooks.events import DELIVERED, FAILED

DELIVERY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86_400.0)


class WebhookMetrics:
    """In the app's registry: `voiceagent_call_context_total{outcome}`,
    `voiceagent_webhook_{delivered,retried,failed}_total`, `voiceagent_webhook_outbox_depth`,
    `voiceagent_webhook_delivery_latency_seconds` (event written to delivered)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.context = Counter(
            "voiceagent_call_context", "Call contexts settled, by outcome (fallbacks use YAML).",
            ("outcome",), registry=r,
        )  # fmt: skip
        for status in ContextStatus:
            self.context.labels(status.value)
        self.delivered = Counter(
            "voiceagent_webhook_delivered", "Call events delivered.", registry=r
        )
        self.retried = Counter(
            "voiceagent_webhook_retried", "Delivery attempts to be retried.", registry=r
        )
        self.failed = Counter("voiceagent_webhook_failed", "Call events given up on.", registry=r)
        self.depth = Gauge(
            "voiceagent_webhook_outbox_depth", "Call events still to deliver.", registry=r
        )
        self.latency = Histogram(
            "voiceagent_webhook_delivery_latency_seconds",
            "From an event written to its delivery.", buckets=DELIVERY_BUCKETS, registry=r,
        )  # fmt: skip

    def count_context(self, outcome: str) -> None:
        self.context.labels(outcome).inc()

    def attempted(self, outcome: str, latency_s: float | None) -> None:
        if outcome == DELIVERED:
            self.delivered.inc()
            if latency_s is not None:
                self.latency.observe(max(latency_s, 0.0))
        elif outcome == FAILED:
            self.failed.inc()
        else:
            self.retried.inc()
