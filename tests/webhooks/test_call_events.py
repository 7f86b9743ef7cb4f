"""`call.ended` through the outbox: written with the call's record, signed, retried, durable
across a restart of the instance that wrote it (real receiver, SQLite records)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from tests.cli_process import run_cli
from tests.rig import StartRig, realtime_options, rig_config
from tests.webhooks.conftest import CTX_REALTIME, CTX_RELAY, HOOK_SETTINGS, hooks_config
from voiceagent.sim.hooks_receiver import HooksReceiver
from voiceagent.sim.script import HangUp, Listen, Say
from voiceagent.sim.webhooks import new_sid
from voiceagent.store.records.schema import make_engine, webhook_events
from voiceagent.webhooks.admin import outbox_events, redeliver_event
from voiceagent.webhooks.events import event_id


async def test_call_ended_delivered_and_verified(start_rig: StartRig, hooks: HooksReceiver) -> None:
    """Each finished call's `call.ended` arrives signed, with its facts, turns and variables."""
    rig = await start_rig(config=hooks_config(hooks), records=True, **HOOK_SETTINGS)
    realtime_sid, relay_sid = new_sid("CA"), new_sid("CA")
    await rig.place_call(CTX_REALTIME, [Listen(), Say("Where is my order?"), Listen(), HangUp()],
                         call_sid=realtime_sid)  # fmt: skip
    await rig.place_call(CTX_RELAY, [Listen(), HangUp()], call_sid=relay_sid)
    events = await hooks.wait_events(2)
    assert all(d.verified for d in hooks.deliveries)
    ended = events[event_id(realtime_sid, "call.ended")]
    assert ended["type"] == "call.ended" and ended["call_sid"] == realtime_sid
    assert ended["from"] == "+14155550100" and ended["to"] == CTX_REALTIME
    assert ended["direction"] == "inbound" and ended["mode"] == "realtime-passthrough"
    assert ended["variables"] == {"first_name": "Ada", "open_order": "A-1042"}
    assert ended["reason"] == "caller_hangup" and ended["ended_by"] == "caller"
    roles = [t["role"] for t in ended["turns"]]
    assert roles[:3] == ["agent", "caller", "agent"]
    assert ended["turns"][0]["text"]  # transcripts recorded on this number: heard text kept
    relay = events[event_id(relay_sid, "call.ended")]
    assert relay["mode"] == "relay-router" and all("text" not in t for t in relay["turns"])
    metrics = rig.services.metrics
    assert metrics is not None
    for _ in range(50):  # the attempt is counted once its result is recorded
        if metrics.registry.get_sample_value("voiceagent_webhook_delivered_total") == 2:
            break
        await asyncio.sleep(0.1)
    assert metrics.registry.get_sample_value("voiceagent_webhook_delivered_total") == 2
    assert (
        metrics.registry.get_sample_value("voiceagent_webhook_delivery_latency_seconds_count") == 2
    )
    assert metrics.registry.get_sample_value("voiceagent_webhook_failed_total") == 0


async def test_receiver_down_then_up_across_restart(
    start_rig: StartRig, hooks: HooksReceiver, tmp_path: Path
) -> None:
    """Events written while the receiver is down (30 s) are delivered once each when it comes
    back, including those the stopped instance wrote, by a new instance on the same database."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'shared.sqlite3'}"
    config = hooks_config(hooks)
    port = hooks.port
    await hooks.stop()  # the receiver is down: connections are refused
    down_at = asyncio.get_running_loop().time()
    first = await start_rig(config=config, database_url=database, **HOOK_SETTINGS)
    sids = [new_sid("CA") for _ in range(3)]
    for sid in sids[:2]:
        await first.place_call(CTX_RELAY, [Listen(), HangUp()], call_sid=sid)
    await first.stop()  # the writing instance goes away with its events undelivered
    second = await start_rig(config=config, database_url=database, **HOOK_SETTINGS)
    await second.place_call(CTX_RELAY, [Listen(), HangUp()], call_sid=sids[2])
    await asyncio.sleep(max(0.0, 30.0 - (asyncio.get_running_loop().time() - down_at)))
    assert hooks.deliveries == []
    await hooks.start(port=port)
    events = await hooks.wait_events(3, within=30.0)
    assert set(events) == {event_id(sid, "call.ended") for sid in sids}
    await asyncio.sleep(1.0)  # nothing more arrives: each was delivered once
    assert sorted(d.event_id for d in hooks.deliveries) == sorted(events)
    engine = make_engine(database)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(webhook_events))).mappings().all()
    finally:
        await engine.dispose()
    assert {r["status"] for r in rows} == {"delivered"}
    assert all(r["attempts"] > 1 for r in rows)


async def test_4xx_marks_failed_and_redeliver(start_rig: StartRig, hooks: HooksReceiver) -> None:
    """A 4xx other than 408/429 stops retrying (failed, as `webhooks list --failed` shows);
    `webhooks redeliver` sends it again."""
    hooks.events_status = 410
    rig = await start_rig(config=hooks_config(hooks), records=True, **HOOK_SETTINGS)
    sid = new_sid("CA")
    await rig.place_call(CTX_RELAY, [Listen(), HangUp()], call_sid=sid)
    evt = event_id(sid, "call.ended")
    await hooks.wait_deliveries(1)
    await asyncio.sleep(1.0)
    assert len(hooks.deliveries) == 1  # not retried
    failed = await outbox_events(rig.settings.database_url, failed_only=True)
    assert [(e["event_id"], e["last_status"]) for e in failed] == [(evt, 410)]
    database = rig.settings.database_url
    code, out, err = await run_cli("webhooks", "--database", database, "list", "--failed")
    assert code == 0, err
    assert evt in out and "failed" in out and "410" in out
    hooks.events_status = 200
    code, out, err = await run_cli("webhooks", "--database", database, "redeliver", evt)
    assert code == 0 and "due again" in out, err
    events = await hooks.wait_events(1)
    assert evt in events
    assert not await redeliver_event(database, "evt_unknown")


async def test_failover_leg_keeps_the_context_and_one_event(
    start_rig: StartRig, hooks: HooksReceiver
) -> None:
    """A realtime call that fails over to relay asks for its context once, its relay leg
    greets with the context's words, and the call sends one `call.ended`, from its last leg."""
    hooks.context_answer = {
        "variables": {"first_name": "Ada"},
        "agent": {"failover_greeting": "Sorry {{first_name}}, I am back."},
    }
    number = "+18005550135"
    config = rig_config(**{number: {
        "mode": "realtime-passthrough", "fallback_mode": "relay-router",
        "webhooks": {"call_context": {"url": hooks.context_url},
                     "call_events": {"url": hooks.events_url}}}})  # fmt: skip
    rig = await start_rig(config=config, records=True, realtime=realtime_options(
        refuse_status=503), **HOOK_SETTINGS)  # fmt: skip
    first = await rig.place_call(number, [Say(ms=300), HangUp()])
    assert first.action_twiml is not None and "<ConversationRelay" in first.action_twiml
    await rig.place_call(number, [Listen(), HangUp()], call_sid=first.call_sid,
                         twiml=first.action_twiml)  # fmt: skip
    events = await hooks.wait_events(1)
    await asyncio.sleep(1.5)  # time for a second event, were one sent
    assert list(events) == [event_id(first.call_sid, "call.ended")]
    assert len(hooks.deliveries) == 1 and len(hooks.contexts) == 1
    ended = events[event_id(first.call_sid, "call.ended")]
    assert ended["failover_from"] == "realtime-passthrough" and ended["mode"] == "relay-router"
    assert rig.router.requests[0].messages[-1]["content"] == "Sorry Ada, I am back."
