"""A leg that follows a failed one holds the call's provisional `call.ended` while it runs.

The failed realtime leg's event is held for WEBHOOK_FAILOVER_HOLD_SECONDS, long enough for its
failover leg to start, not for it to finish: so the failover leg (and a ConversationRelay
reconnect of it) moves the event's due time on, from its start and every third of the hold,
until its own event replaces it at its end. If its instance dies meanwhile, the renewals stop
and the provisional event goes out within one hold: late, never lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

from voiceagent.config_models import CallPlan
from voiceagent.session.call import CallSession
from voiceagent.store.records.sink import RecordingSink
from voiceagent.webhooks.events import placeholder_row

RENEWALS_PER_HOLD: Final = 3


def holds_event(call: CallSession, plan: CallPlan, parameters: Mapping[str, str]) -> bool:
    """Whether this leg follows another leg of the call (a failover leg, or a reconnect
    attempt) on a number that sends call events: an earlier leg's event may be held for it."""
    follows = call.failover_from is not None or parameters.get("attempt", "1") != "1"
    return follows and plan.webhooks.call_events is not None


async def hold_event(records: RecordingSink, call_sid: str, hold_s: float) -> None:
    """Keep the call's provisional `call.ended` due `hold_s` from now, until cancelled (the
    leg ended: its own event replaces the held one). A no-op on a final event."""
    while True:
        now = datetime.now(UTC)
        due = now + timedelta(seconds=hold_s)
        records.event_timing(call_sid, placeholder_row(call_sid, due, now))
        await asyncio.sleep(hold_s / RENEWALS_PER_HOLD)
