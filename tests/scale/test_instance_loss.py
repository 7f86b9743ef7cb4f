"""Losing one of two instances: a deploy's SIGTERM (drain) and a crash's SIGKILL."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from tests.rig import REALTIME_A, RELAY
from tests.scale.harness import Scale, eventually
from tests.scale.topology import LEASE_S
from voiceagent.sim.script import HangUp, Listen, Pause, Say, Step

pytestmark = pytest.mark.scale


def realtime_script(*, pause_ms: int, turns_before: int = 1) -> list[Step]:
    steps: list[Step] = [Listen()]
    for i in range(turns_before):
        steps += [Say(ms=500, seed=i + 1), Listen()]
    return [*steps, Pause(pause_ms), Say(ms=500, seed=7), Listen(), HangUp()]


def relay_script(*texts: str, pause_ms: int = 0) -> list[Step]:
    steps: list[Step] = [Listen(), Pause(pause_ms)]
    for text in texts:
        steps += [Say(text), Listen()]
    return [*steps, HangUp()]


async def test_sigterm_drains_one_instance_while_the_other_takes_new_calls(scale: Scale) -> None:
    """After SIGTERM to one instance its calls run to their end, every new call is answered
    by the other instance (requests that still reach the draining one are sent again), no
    call is dropped, and the drained process exits 0."""
    app1 = scale.topology.instance("app1")
    _, old_realtime = await scale.stream_on("app1", REALTIME_A, realtime_script(pause_ms=1500))
    _, old_relay = await scale.stream_on("app1", RELAY, relay_script("Still there?", pause_ms=1500))
    app1.signal(signal.SIGTERM)
    new = [scale.place_call(REALTIME_A, realtime_script(pause_ms=0)) for _ in range(2)]
    new += [scale.place_call(RELAY, relay_script("New call?")) for _ in range(2)]
    new_records = await asyncio.gather(*new)
    old = await asyncio.gather(old_realtime, old_relay)
    assert app1.proc is not None and await asyncio.to_thread(app1.proc.wait, 30) == 0
    for rec in [*new_records, *old]:
        assert rec.webhook_status == 200 and rec.closed_by == "caller", rec.summary()
    for rec in (new_records[0], new_records[1], old[0]):
        assert len(rec.responses_heard()) == 3 and rec.action_status == 200
    for rec in (new_records[2], new_records[3], old[1]):
        assert len(rec.turns) == 2 and all(t.clips and t.clips[0].valid for t in rec.turns)
    for rec in new_records:
        assert scale.topology.where(rec.call_sid)["stream"] == {"app2"}


async def test_sigkill_ends_only_that_instances_calls_and_frees_its_leases(scale: Scale) -> None:
    """SIGKILL of one instance ends the calls it served and no other; its Inworld session
    leases expire within the lease time while the other's stay held; the records of its
    finished turns are in PostgreSQL."""
    # The kill must land in the pause: four calls are placed one by one and each answered
    # twice first; once, on a busy CI machine, a caller finished a 20 s pause before the kill.
    script = realtime_script(pause_ms=30000, turns_before=2)
    calls = dict([await scale.stream_on(name, REALTIME_A, script)
                  for name in ("app1", "app2", "app1", "app2")])  # fmt: skip
    killed = {sid for sid in calls if scale.topology.where(sid)["stream"] == {"app1"}}
    kept = set(calls) - killed

    async def answered_twice() -> bool:  # the greeting and two answers, on every call
        return all(len(scale.realtime.session(s).responses) >= 3 for s in calls)

    async def leases_freed() -> bool:
        return not await scale.leases() & killed

    async def finished_turns_recorded() -> bool:  # the writer looks every LINGER_S
        rows = await scale.rows("SELECT call_sid, turn_index FROM turns "
                                "WHERE call_sid = ANY(:sids)", sids=list(killed))  # fmt: skip
        return all({0, 1} <= {r.turn_index for r in rows if r.call_sid == sid} for sid in killed)

    await eventually(answered_twice, within=15)
    await asyncio.sleep(1.0)  # the last answers play out
    await eventually(finished_turns_recorded, within=10, every=0.2)
    assert await scale.leases() >= set(calls)
    scale.topology.instance("app1").signal(signal.SIGKILL)
    killed_at = time.monotonic()
    await eventually(leases_freed, within=LEASE_S + 5, every=0.1)
    freed_after = time.monotonic() - killed_at
    assert await scale.leases() >= kept, "the live instance's calls must keep their leases"
    records = {sid: await task for sid, task in calls.items()}
    for sid in killed:
        assert records[sid].closed_by == "server" and len(records[sid].responses_heard()) == 3
    for sid in kept:
        assert records[sid].closed_by == "caller" and len(records[sid].responses_heard()) == 4
        assert (await scale.call_row(sid)).end_reason == "caller_hangup"
    rows = await scale.rows("SELECT call_sid, turn_index FROM turns WHERE call_sid = ANY(:sids)",
                            sids=list(killed))  # fmt: skip
    for sid in killed:
        assert {0, 1} <= {r.turn_index for r in rows if r.call_sid == sid}, rows
    assert freed_after <= LEASE_S + 5
