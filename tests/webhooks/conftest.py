"""Webhook tests: a real local receiver (``voiceagent.sim.hooks_receiver``) and rig configs
whose numbers POST to it. ``hooks`` is a running receiver; ``hooks_config(receiver)`` is the
rig's config plus CTX_REALTIME and CTX_RELAY, whose webhooks point at the receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.rig import rig_config
from voiceagent.config import Config
from voiceagent.sim.hooks_receiver import HooksReceiver

SECRET = "test-webhook-secret-0123456789"
CTX_REALTIME = "+18005550131"
CTX_RELAY = "+18005550132"
TEMPLATE = {"instructions": "You help {{first_name}} with order {{open_order}}.",
            "greeting": "Hi there, {{first_name}}."}  # fmt: skip
HOOK_SETTINGS: dict[str, Any] = {
    "webhook_signing_secret": SECRET,
    "webhook_retry_first_seconds": 0.2,
    "webhook_poll_seconds": 0.1,
    "webhook_timeout_seconds": 1.0,
    "webhook_lease_seconds": 2.0,
}


def hooks_config(receiver: HooksReceiver, *, timeout_ms: int = 1500, events: bool = True) -> Config:
    """The rig's config with two numbers whose context (and events) webhooks go to `receiver`."""
    hooks: dict[str, Any] = {
        "call_context": {"url": receiver.context_url, "timeout_ms": timeout_ms}
    }
    if events:
        hooks["call_events"] = {"url": receiver.events_url}
    return rig_config(**{
        CTX_REALTIME: {"mode": "realtime-passthrough", "webhooks": hooks, "agent": TEMPLATE,
                       "record_transcripts": True},
        CTX_RELAY: {"mode": "relay-router", "webhooks": hooks, "agent": TEMPLATE},
    })  # fmt: skip


@pytest.fixture
async def hooks() -> AsyncIterator[HooksReceiver]:
    """A running receiver answering contexts with GREET_BY_NAME and taking events."""
    receiver = await HooksReceiver(SECRET).start()
    try:
        yield receiver
    finally:
        await receiver.stop()
