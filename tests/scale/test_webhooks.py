"""Webhooks on two instances behind HAProxy (shared Redis + PostgreSQL): one call's context is
fetched once and used by whichever instance serves its stream, and an instance killed in the
middle of delivering an event leaves it to the other."""

from __future__ import annotations

import asyncio
import signal

from tests.scale.harness import Scale, eventually
from tests.scale.topology import CTX_REALTIME, CTX_RELAY, HOOKS_SECRET, SERVERS
from voiceagent.sim.hooks_receiver import HooksReceiver
from voiceagent.sim.script import HangUp, Listen
from voiceagent.sim.webhooks import new_sid
from voiceagent.webhooks.events import event_id


async def _receiver(scale: Scale) -> HooksReceiver:
    return await HooksReceiver(HOOKS_SECRET).start(port=scale.topology.hooks_port)


async def test_context_across_instances(scale: Scale) -> None:
    """A realtime call answered by one instance and streamed on the other greets with the
    context fetched once; so does a relay call through the balancer; both events arrive."""
    hooks = await _receiver(scale)
    try:
        for stream_on in SERVERS:
            call_sid, task = await scale.stream_on(stream_on, CTX_REALTIME, [Listen(), HangUp()])
            record = await task
            assert record.heard_ms > 0
            where = scale.topology.where(call_sid)
            assert where["webhook"] != where["stream"]
        relay_sid = new_sid("CA")
        await scale.place_call(CTX_RELAY, [Listen(), HangUp()], call_sid=relay_sid)
        assert len(hooks.contexts) == 3 and all(hooks.context_verified)
        sent = " ".join(str(e) for s in scale.realtime.sessions for e in s.events)
        assert sent.count("Hello Ada! Calling about order A-1042?") == 2
        assert "Help Ada." in sent
        raw = b" ".join(r.raw for r in scale.router.requests).decode()
        assert "Hello Ada! Calling about order A-1042?" in raw
        events = await hooks.wait_events(3, within=20)
        assert event_id(relay_sid, "call.ended") in events
        assert all(e["variables"]["first_name"] == "Ada" for e in events.values())
    finally:
        await hooks.stop()


async def test_sigkill_mid_delivery_other_instance_delivers(scale: Scale) -> None:
    """The instance holding an event's lease is SIGKILLed while its request is under way; the
    other instance delivers the event once the lease expires."""
    hooks = await _receiver(scale)
    hold = hooks.hold_events = asyncio.Event()
    try:
        call_sid = new_sid("CA")
        await scale.place_call(CTX_RELAY, [Listen(), HangUp()], call_sid=call_sid)
        evt = event_id(call_sid, "call.ended")
        await hooks.wait_arrived(1, within=20)
        rows = await scale.rows(
            "SELECT lease_owner FROM webhook_events WHERE event_id = :id", id=evt
        )
        pid = int(rows[0].lease_owner.split(":")[1])
        holder = next(i for i in scale.topology.instances if i.proc and i.proc.pid == pid)
        holder.signal(signal.SIGKILL)
        await asyncio.to_thread(holder.proc.wait, 10)  # type: ignore[union-attr]
        hold.set()  # the killed instance's request is gone; the next ones are answered

        async def delivered() -> bool:
            found = await scale.rows(
                "SELECT status FROM webhook_events WHERE event_id = :id", id=evt
            )
            return bool(found) and found[0].status == "delivered"

        await eventually(delivered, within=30, every=0.2)
        assert evt in hooks.events
        assert {d.event_id for d in hooks.deliveries} == {evt}
        assert all(d.verified for d in hooks.deliveries)
    finally:
        await hooks.stop()
