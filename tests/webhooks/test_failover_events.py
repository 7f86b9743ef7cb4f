"""A call that fails over from realtime to relay sends exactly one `call.ended`: the realtime
leg's is provisional (held for WEBHOOK_FAILOVER_HOLD_SECONDS), the relay leg's replaces it; if
no relay leg runs, the realtime leg's goes out, at once when a callback ends the call, else
after the hold (real receiver, SQLite records, simulated Twilio)."""

from __future__ import annotations

import asyncio
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from tests.rig import PUBLIC, Rig, StartRig, realtime_options, rig_config, webhook_form
from tests.webhooks.conftest import HOOK_SETTINGS
from voiceagent.config import Config
from voiceagent.sim.hooks_receiver import HooksReceiver
from voiceagent.sim.script import HangUp, Listen, Pause, Say
from voiceagent.store.records.schema import make_engine, webhook_events
from voiceagent.webhooks.events import event_id

NUMBER = "+18005550136"
SHORT_HOLD_S = 1.5
LONG_HOLD_S = 60.0
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _config(hooks: HooksReceiver) -> Config:
    return rig_config(**{NUMBER: {
        "mode": "realtime-passthrough", "fallback_mode": "relay-router",
        "webhooks": {"call_events": {"url": hooks.events_url}}}})  # fmt: skip


async def _failing_rig(start_rig: StartRig, hooks: HooksReceiver, hold_s: float, **kw: Any) -> Rig:
    """A rig whose Inworld Realtime refuses every session: each realtime leg fails upstream."""
    kw.setdefault("records", True)
    return await start_rig(
        config=_config(hooks), realtime=realtime_options(refuse_status=503),
        webhook_failover_hold_seconds=hold_s, **HOOK_SETTINGS, **kw,
    )  # fmt: skip


async def _outbox_row(rig: Rig, evt: str) -> dict[str, Any]:
    """The event's outbox row, once the rig's records are written."""
    assert rig.services.records is not None
    await rig.services.records.drained()
    engine = make_engine(rig.settings.database_url)
    try:
        async with engine.connect() as conn:
            query = select(webhook_events).where(webhook_events.c.event_id == evt)
            return dict((await conn.execute(query)).mappings().one())
    finally:
        await engine.dispose()


async def _realtime_leg(rig: Rig) -> tuple[str, str]:
    """One call whose realtime leg fails upstream: its CallSid and the failover TwiML the
    `<Connect action>` callback answered with."""
    first = await rig.place_call(NUMBER, [Say(ms=300), HangUp()])
    assert first.action_twiml is not None and "<ConversationRelay" in first.action_twiml
    return first.call_sid, first.action_twiml


def _action_path(twiml: str) -> str:
    """The path (and query) of the TwiML's `<Connect action>` URL."""
    connect = ET.fromstring(twiml).find("Connect")
    assert connect is not None
    return connect.get("action", "").removeprefix(PUBLIC)


def _assert_realtime_event(ended: dict[str, Any], call_sid: str) -> None:
    """The realtime leg's event: a call that ended where that leg failed."""
    assert ended["call_sid"] == call_sid and ended["mode"] == "realtime-passthrough"
    assert ended["reason"] == "upstream_failed" and ended["failover_from"] is None


async def test_completed_failover_sends_only_the_relay_legs_event(
    start_rig: StartRig, hooks: HooksReceiver
) -> None:
    """The realtime leg's provisional event waits while the relay leg runs (longer than the
    hold), the relay leg's event replaces it: one `call.ended`, with `failover_from`."""
    rig = await _failing_rig(start_rig, hooks, SHORT_HOLD_S)
    call_sid, twiml = await _realtime_leg(rig)
    evt = event_id(call_sid, "call.ended")
    held = await _outbox_row(rig, evt)
    assert held["status"] == "provisional" and held["attempts"] == 0
    _assert_realtime_event(orjson.loads(held["body"]), call_sid)
    script = [Listen(), Pause(ms=round(SHORT_HOLD_S * 2500)), HangUp()]
    await rig.place_call(NUMBER, script, call_sid=call_sid, twiml=twiml)
    events = await hooks.wait_events(1)
    await asyncio.sleep(SHORT_HOLD_S * 2)  # past the realtime leg's own hold: nothing else
    assert [d.event_id for d in hooks.deliveries] == [evt]
    ended = events[evt]
    assert ended["failover_from"] == "realtime-passthrough" and ended["mode"] == "relay-router"
    assert ended["reason"] == "caller_hangup"
    delivered = await _outbox_row(rig, evt)
    assert delivered["status"] == "delivered" and delivered["attempts"] == 1


async def test_relay_leg_never_connects_the_realtime_event_goes_after_the_hold(
    start_rig: StartRig, hooks: HooksReceiver
) -> None:
    """The caller hangs up while Twilio connects the relay leg, and Twilio says nothing more:
    the realtime leg's event is delivered once its hold is over, with that leg's content."""
    rig = await _failing_rig(start_rig, hooks, SHORT_HOLD_S)
    call_sid, _ = await _realtime_leg(rig)
    evt = event_id(call_sid, "call.ended")
    assert (await _outbox_row(rig, evt))["status"] == "provisional"
    events = await hooks.wait_events(1, within=SHORT_HOLD_S + 15)
    _assert_realtime_event(events[evt], call_sid)
    await asyncio.sleep(1.0)
    assert [d.event_id for d in hooks.deliveries] == [evt]


@pytest.mark.parametrize("statuses", [("completed",), ("failed", "failed")])
async def test_relay_action_without_a_leg_releases_the_realtime_event(
    start_rig: StartRig, hooks: HooksReceiver, statuses: tuple[str, ...]
) -> None:
    """The relay leg's `<Connect action>` comes without a leg having run (the caller hung up
    while Twilio connected it; or its socket failed, and failed again on the reconnect): the
    held realtime event goes out at once, not after the (long) hold."""
    rig = await _failing_rig(start_rig, hooks, LONG_HOLD_S)
    call_sid, twiml = await _realtime_leg(rig)
    for status in statuses:
        fields = {"SessionStatus": status, "SessionId": "VX" + "6" * 32, "SessionDuration": "0"}
        if status == "failed":
            fields |= {"ErrorCode": "39001", "ErrorMessage": "Network connection failed."}
        else:
            fields["CallStatus"] = "completed"
        code, twiml = await rig.post_signed(
            _action_path(twiml), webhook_form(NUMBER, call_sid, **fields)
        )
        assert code == 200
    assert "<ConversationRelay" not in twiml  # the call ends: empty, or the apology
    events = await hooks.wait_events(1, within=15)
    _assert_realtime_event(events[event_id(call_sid, "call.ended")], call_sid)


async def _two_instances(
    start_rig: StartRig, hooks: HooksReceiver, tmp_path: Path, hold_s: float
) -> tuple[Rig, Rig]:
    """Two instances sharing Redis (plans, outcomes) and one records database (the outbox),
    as behind a load balancer."""
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (OSError, aioredis.ConnectionError) as exc:
        pytest.skip(f"no Redis server answers at {REDIS_URL} ({type(exc).__name__})")
    finally:
        await client.aclose()
    shared = {"redis_url": REDIS_URL, "records": False,
              "database_url": f"sqlite+aiosqlite:///{tmp_path / 'shared.sqlite3'}"}  # fmt: skip
    a = await _failing_rig(start_rig, hooks, hold_s, **shared)
    return a, await _failing_rig(start_rig, hooks, hold_s, **shared)


async def test_failover_leg_on_another_instance_replaces_the_event(
    start_rig: StartRig, hooks: HooksReceiver, tmp_path: Path
) -> None:
    """The realtime leg ends on instance A, its relay leg runs on instance B for longer than
    the hold: B's event replaces A's in the shared outbox; one `call.ended` arrives."""
    a, b = await _two_instances(start_rig, hooks, tmp_path, SHORT_HOLD_S)
    call_sid, twiml = await _realtime_leg(a)
    script = [Listen(), Pause(ms=round(SHORT_HOLD_S * 2500)), HangUp()]
    await b.place_call(NUMBER, script, call_sid=call_sid, twiml=twiml)
    evt = event_id(call_sid, "call.ended")
    events = await hooks.wait_events(1)
    await asyncio.sleep(SHORT_HOLD_S * 2)
    assert [d.event_id for d in hooks.deliveries] == [evt]
    assert events[evt]["failover_from"] == "realtime-passthrough"


async def test_release_on_another_instance_sends_the_event_at_once(
    start_rig: StartRig, hooks: HooksReceiver, tmp_path: Path
) -> None:
    """The realtime leg ends on instance A; the relay leg's `<Connect action>` (the caller hung
    up while Twilio connected it) lands on instance B: A's held event goes out at once."""
    a, b = await _two_instances(start_rig, hooks, tmp_path, LONG_HOLD_S)
    call_sid, twiml = await _realtime_leg(a)
    fields = {"SessionStatus": "completed", "CallStatus": "completed", "SessionDuration": "0"}
    code, _ = await b.post_signed(_action_path(twiml), webhook_form(NUMBER, call_sid, **fields))
    assert code == 200
    events = await hooks.wait_events(1, within=15)
    _assert_realtime_event(events[event_id(call_sid, "call.ended")], call_sid)
