"""Delivering the outbox: one loop per instance, signed requests, exponential backoff.

Every `poll_s` the loop leases the due events (outbox.py) and POSTs each with
`X-Voiceagent-Signature` and `X-Voiceagent-Event-Id`. A 2xx marks it delivered; 4xx other
than 408/429 marks it failed (the receiver refuses it: retrying cannot help); anything else
(5xx, 408, 429, timeout, refused connection) schedules the next attempt after
`first_s * 2^(attempts-1)` (±20 %, at most an hour apart) until `max_s` after the event was
written, then marks it failed. Events survive restarts (they live in the database), and
whichever instance is alive delivers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from voiceagent.logging import get_logger
from voiceagent.webhooks.events import DELIVERED, FAILED, PENDING
from voiceagent.webhooks.outbox import Leased, depth, lease_due, settle
from voiceagent.webhooks.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, sign
from voiceagent.webhooks.telemetry import WebhookMetrics

log = get_logger("voiceagent.webhooks")

BATCH: Final = 20
MAX_GAP_S: Final = 3600.0
RETRYABLE_4XX: Final = frozenset({408, 429})
SETTLE_TRIES: Final = 3


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    first_s: float = 10.0
    max_s: float = 86_400.0

    def next_at(
        self, attempts: int, created: datetime, now: datetime, jitter: float = 1.0
    ) -> datetime | None:
        """When attempt number `attempts + 1` is due; None once past `max_s` (give up)."""
        gap = min(self.first_s * 2 ** max(attempts - 1, 0), MAX_GAP_S) * jitter
        due = now + timedelta(seconds=gap)
        return None if due > created + timedelta(seconds=self.max_s) else due


def verdict(http_status: int | None) -> str:
    """What an attempt's answer means: delivered, failed (do not retry) or pending (retry)."""
    if http_status is None:
        return PENDING
    if 200 <= http_status < 300:
        return DELIVERED
    if 400 <= http_status < 500 and http_status not in RETRYABLE_4XX:
        return FAILED
    return PENDING


class Deliverer:
    """The outbox delivery loop of one instance (`start`, `stop`)."""

    def __init__(
        self, engine: AsyncEngine, http: aiohttp.ClientSession, secret: str, *,
        policy: RetryPolicy, lease_s: float, poll_s: float, timeout_s: float,
        metrics: WebhookMetrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        jitter: Callable[[], float] = lambda: random.uniform(0.8, 1.2),
    ) -> None:  # fmt: skip
        self._engine, self._http, self._secret = engine, http, secret
        self._policy, self._poll_s, self._timeout_s = policy, poll_s, timeout_s
        self._lease_s = max(lease_s, timeout_s * 2)
        self._metrics, self._clock, self._jitter = metrics, clock, jitter
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{random.getrandbits(32):08x}"
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhook-deliverer")

    def poke(self) -> None:
        """Look for due events now (e.g. after a redeliver)."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        down = ever_up = False
        while True:
            try:
                taken = await self.deliver_due()
                if self._metrics is not None:
                    async with self._engine.connect() as conn:
                        self._metrics.depth.set(await depth(conn))
                if down:
                    log.info("webhook_outbox_up")
                down, ever_up = False, True
            except Exception as exc:  # the database is the boundary: keep the loop alive
                taken = 0
                if not down:
                    down = True  # at start: the records writer may not have migrated yet
                    report = log.warning if ever_up else log.info
                    report("webhook_outbox_unavailable", error=type(exc).__name__)
            if taken < BATCH:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_s)

    async def deliver_due(self) -> int:
        """Lease the due events and attempt each once (concurrently); how many were taken."""
        now = self._clock()
        async with self._engine.begin() as conn:
            taken = await lease_due(
                conn, self.owner, now, now + timedelta(seconds=self._lease_s), BATCH
            )
        await asyncio.gather(*(self._attempt(event) for event in taken))
        return len(taken)

    async def _attempt(self, event: Leased) -> None:
        http_status, error = await self._post(event)
        outcome = verdict(http_status)
        now = self._clock()
        next_at = None
        if outcome == PENDING:
            created = event.created_at.replace(tzinfo=event.created_at.tzinfo or UTC)
            next_at = self._policy.next_at(event.attempts + 1, created, now, self._jitter())
            if next_at is None:
                outcome, error = FAILED, (error or f"status {http_status}") + "; retries over"
        kept = await self._settle(
            event, status=outcome, next_at=next_at, http_status=http_status, error=error,
            now=now,
        )  # fmt: skip
        fields = {"event_id": event.event_id, "attempt": event.attempts + 1,
                  "http_status": http_status, "error": error}  # fmt: skip
        if not kept:
            log.warning("webhook_lease_lost", **fields)
            return
        if outcome == DELIVERED:
            created = event.created_at.replace(tzinfo=event.created_at.tzinfo or UTC)
            latency = (now - created).total_seconds()
            log.info("webhook_delivered", latency_s=round(latency, 3), **fields)
        elif outcome == FAILED:
            log.error("webhook_failed", **fields)
        else:
            log.warning("webhook_retry", next_at=next_at.isoformat() if next_at else None,
                        **fields)  # fmt: skip
        if self._metrics is not None:
            self._metrics.attempted(outcome, latency if outcome == DELIVERED else None)

    async def _settle(self, event: Leased, **result: Any) -> bool:
        """Record the attempt, trying again briefly if the database is busy (SQLite locks):
        an unrecorded success would be sent again when the lease expires."""
        for attempt in range(SETTLE_TRIES):
            try:
                async with self._engine.begin() as conn:
                    return await settle(conn, event, self.owner, **result)
            except Exception as exc:  # the database is the boundary
                if attempt == SETTLE_TRIES - 1:
                    log.warning("webhook_settle_failed", event_id=event.event_id,
                                error=type(exc).__name__)  # fmt: skip
                    return False
                await asyncio.sleep(0.2 * (attempt + 1))
        return False

    async def _post(self, event: Leased) -> tuple[int | None, str | None]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "voiceagent-webhooks",
            SIGNATURE_HEADER: sign(self._secret, event.body),
            EVENT_ID_HEADER: event.event_id,
        }
        try:
            async with asyncio.timeout(self._timeout_s):
                async with self._http.post(
                    event.url, data=event.body, headers=headers, allow_redirects=False
                ) as resp:
                    await resp.content.read(4096)  # a little of the answer, then let go
                    return resp.status, None
        except TimeoutError:
            return None, "timeout"
        except (aiohttp.ClientError, OSError) as exc:
            return None, type(exc).__name__
