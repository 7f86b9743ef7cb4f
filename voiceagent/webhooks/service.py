"""The business wiring of one app: its context fetches, its outbox deliverer and its
recordings, started and stopped with the app (`start_webhooks` in app.py's services context)."""

from __future__ import annotations

from voiceagent.logging import get_logger
from voiceagent.runtime import Services
from voiceagent.store.records.sink import RecordingSink
from voiceagent.webhooks.context_fetch import CallContexts
from voiceagent.webhooks.delivery import Deliverer, RetryPolicy
from voiceagent.webhooks.recordings import Recordings, rest_client

log = get_logger("voiceagent.webhooks")


class AppWebhooks:
    """Holds what `start_webhooks` built, for the app's lifetime."""

    def __init__(
        self, contexts: CallContexts | None, deliverer: Deliverer | None,
        recordings: Recordings | None = None,
    ) -> None:  # fmt: skip
        self.contexts = contexts
        self.deliverer = deliverer
        self.recordings = recordings

    def start(self) -> None:
        if self.deliverer is not None:
            self.deliverer.start()

    async def stop(self) -> None:
        if self.deliverer is not None:
            await self.deliverer.stop()
        if self.contexts is not None:
            await self.contexts.close()
        if self.recordings is not None:
            await self.recordings.close()


def start_webhooks(services: Services, recorder: RecordingSink | None) -> AppWebhooks:
    """Context fetches whenever a signing secret is set; the deliverer when there is also a
    records database (the outbox lives there). Call events without a database are refused at
    start (`Settings.require_webhook_secret` + this check)."""
    settings = services.settings
    secret = settings.webhook_signing_secret
    recordings = services.recordings = Recordings(
        rest_client(settings), services.stores.context, settings.public_url, recorder
    )
    if not secret:
        return AppWebhooks(None, None, recordings)
    webhook_metrics = services.metrics.webhooks if services.metrics is not None else None
    count = webhook_metrics.count_context if webhook_metrics is not None else None
    services.contexts = CallContexts(services.http, services.stores.context, secret, count)
    if recorder is None:
        return AppWebhooks(services.contexts, None, recordings)
    deliverer = Deliverer(
        recorder.engine, services.http, secret,
        policy=RetryPolicy(settings.webhook_retry_first_seconds,
                           settings.webhook_retry_max_seconds),
        lease_s=settings.webhook_lease_seconds, poll_s=settings.webhook_poll_seconds,
        timeout_s=settings.webhook_timeout_seconds, metrics=webhook_metrics,
    )  # fmt: skip
    return AppWebhooks(services.contexts, deliverer, recordings)
