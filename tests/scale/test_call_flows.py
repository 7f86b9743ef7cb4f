"""Every call flow through two instances behind HAProxy round robin, as on one instance: the
webhook, the WebSocket, the `<Connect action>` callback and the clip fetches of one call land
on different instances, which share the call's state through Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.rig import APOLOGY, FAILOVER, REALTIME_A, RELAY, realtime_options
from tests.scale.harness import Scale, eventually
from tests.scale.topology import BUDGET, LEGACY_RELAY, SERVERS
from voiceagent.sim.script import Drop, HangUp, Listen, Pause, Say, Step

pytestmark = pytest.mark.scale


def realtime_turns(n: int) -> list[Step]:
    steps: list[Step] = [Listen()]
    for i in range(n):
        steps += [Say(ms=600, seed=i + 1), Listen()]
    return [*steps, HangUp()]


def relay_asks(*texts: str) -> list[Step]:
    steps: list[Step] = [Listen()]
    for text in texts:
        steps += [Say(text), Listen()]
    return [*steps, HangUp()]


def clip_failures(record: Any) -> list[str]:
    return [f"{c.url}: {c.status} {c.error}" for t in record.turns for c in t.clips if not c.valid]


async def test_calls_of_both_modes_cross_instances_and_all_succeed(scale: Scale) -> None:
    """Concurrent realtime and relay calls all get their greeting and every answer, no clip
    fetch fails, and their requests were served by both instances, often several per call."""
    scale.router.sentence_s = 0.2  # clips are fetched while their sentence is synthesized
    calls = [scale.place_call(REALTIME_A, realtime_turns(2)) for _ in range(3)]
    calls += [scale.place_call(RELAY, relay_asks("One?", "Two?")) for _ in range(4)]
    records = await asyncio.gather(*calls)
    for rec in records[:3]:
        assert rec.closed_by == "caller" and len(rec.responses_heard()) == 3, rec.summary()
        assert rec.action_status == 200 and rec.action_twiml is not None
    for rec in records[3:]:
        assert [bool(t.clips) for t in rec.turns] == [True, True, True], rec.summary()
        assert clip_failures(rec) == []
        assert rec.turns[2].text.startswith("You said: Two.") or rec.turns[2].clips
    served = [scale.topology.where(rec.call_sid) for rec in records]
    assert all(len(s["webhook"]) == 1 and len(s["stream"]) == 1 for s in served), served
    assert {name for s in served for name in s["stream"]} == set(SERVERS)
    assert any(s["webhook"] != s["stream"] for s in served), served
    clip_servers = {srv for srv, status, _m, path in scale.topology.requests()
                    if path.startswith("/audio/") and status == 200}  # fmt: skip
    assert clip_servers == set(SERVERS)
    assert not [r for r in scale.topology.requests() if r[3].startswith("/audio/") and r[1] != 200]


async def test_realtime_turns_and_barge_in_work_through_the_balancer(scale: Scale) -> None:
    """A realtime call answers every turn; speech over the agent clears, cancels and truncates
    at the heard audio; the records of both land in the shared PostgreSQL."""
    rec = await scale.place_call(REALTIME_A, realtime_turns(2))
    session = scale.realtime.session(rec.call_sid)
    assert [r.status for r in session.responses] == ["completed"] * 3
    assert session.responses[0].text == "Hello from A." and len(rec.responses_heard()) == 3
    row = await scale.call_row(rec.call_sid)
    assert row.end_reason == "caller_hangup" and row.turns == 2
    scale.realtime.options = realtime_options(response_audio_ms=4000, chunk_gap_s=0.08)
    script = [Listen("playing", 400), Say(ms=600), Listen("playing", 200), HangUp()]
    rec = await scale.place_call(REALTIME_A, script)
    session = scale.realtime.session(rec.call_sid)
    greeting = session.responses[0]
    [truncate] = session.of_type("conversation.item.truncate")
    assert len(rec.clears) == 1 and session.of_type("response.cancel")
    assert truncate["item_id"] == greeting.item_id
    assert 0 < truncate["audio_end_ms"] <= rec.heard_ms_by_response[greeting.id] + 1
    assert len(rec.responses_heard()) == 2  # the call went on: the answer to the barge-in
    assert (await scale.call_row(rec.call_sid)).barge_ins == 1


async def test_relay_interrupt_keeps_only_the_heard_sentences(scale: Scale) -> None:
    """A relay barge-in aborts the Router stream and the next request carries only what was
    heard, with the clips fetched from either instance."""
    scale.router.sentence_s = 0.4
    scale.router.answers.extend(["Hello there!", "First part here. Second part now. Third."])
    first_ms = len("First part here. ") * 40.0
    script = [Listen(), Say("Talk."), Listen("playing", first_ms + 100), Say("Stop."), Listen()]
    rec = await scale.place_call(RELAY, script)
    talk, after = scale.router.requests[1], scale.router.requests[2]
    assert talk.aborted and rec.turns[1].interrupted
    assert after.messages[-2:] == [
        {"role": "assistant", "content": "First part here. "},
        {"role": "user", "content": "Stop."},
    ]
    assert clip_failures(rec) == [] and rec.turns[2].clips


async def test_relay_reconnect_carries_the_conversation_across_instances(scale: Scale) -> None:
    """Without applicationReconnect, a ConversationRelay session lost on Twilio's side
    reconnects through the action callback (attempt=2) on whichever instance, with the
    conversation of the first leg."""
    script = [Listen(), Say("Remember banana."), Listen(), Drop(), Say("What was it?"), Listen()]
    # in turn: webhook app1, first leg app2, three clips, callback app2, second leg app1
    await scale.steer("app1")
    rec = await scale.place_call(LEGACY_RELAY, script)
    assert rec.sessions == 2 and rec.parameters["attempt"] == "2"
    requests = scale.router.requests
    assert len(requests) == 3  # greeting, turn 1, turn 2: no second greeting
    assert [m["content"] for m in requests[2].messages[-3:]] == [
        "Remember banana.",
        "You said: Remember banana. Is there anything else I can do? ",
        "What was it?",
    ]
    assert scale.topology.where(rec.call_sid)["stream"] == {"app1", "app2"}


async def _failover(scale: Scale, script: list[Step]) -> tuple[Any, Any]:
    """A FAILOVER call whose webhook and action callback land on one instance and its
    stream on the other; then its ConversationRelay leg from the action's TwiML."""
    await scale.steer("app1")  # webhook app1, stream app2, callback app1 (nothing else runs)
    rec = await scale.place_call(FAILOVER, script)
    assert rec.action_twiml is not None and "<ConversationRelay" in rec.action_twiml, rec.summary()
    relay = await scale.place_call(FAILOVER, [Listen(), Say("Are you still there?"), Listen()],
                                   call_sid=rec.call_sid, twiml=rec.action_twiml)  # fmt: skip
    where = scale.topology.where(rec.call_sid)
    assert where["stream"] == {"app2"} and "app1" in where["action"], where
    return rec, relay


async def test_refused_realtime_fails_over_on_the_other_instance(scale: Scale) -> None:
    """Inworld refusing: the callback, on the instance that did not serve the stream, hands
    the call to relay mode, which opens with the failover greeting."""
    scale.realtime.options = realtime_options(refuse_status=503)
    _rec, relay = await _failover(scale, [Say(ms=300), HangUp()])
    assert relay.parameters.get("failover_from") == "realtime-passthrough"
    assert relay.turns[0].clips and relay.turns[1].clips and clip_failures(relay) == []
    assert scale.router.requests[0].messages[-1]["content"] == "Sorry, I am back."
    last = scale.router.requests[-1].messages
    assert last[-1] == {"role": "user", "content": "Are you still there?"}


async def test_dropped_realtime_fails_over_with_the_conversation(scale: Scale) -> None:
    """Inworld dropping mid-call and refusing new sessions: the relay leg, served by other
    instances, carries the conversation heard so far."""
    scale.realtime.options = realtime_options(drop_after_responses=2, refuse_after_sessions=1)
    script = [Listen(), Say(ms=600), Listen(), Say(ms=600), Listen(), HangUp()]
    rec, _relay = await _failover(scale, script)
    assert rec.heard_ms > 0
    last = scale.router.requests[-1].messages
    assert [m["role"] for m in last].count("assistant") >= 2, last
    assert last[-1] == {"role": "user", "content": "Are you still there?"}
    row = await scale.call_row(rec.call_sid)  # one row for both legs, from two instances
    assert row.mode == "relay-router" and row.upstream_failure == "dropped"


async def test_upstream_failure_without_fallback_apologises_from_the_other_instance(
    scale: Scale,
) -> None:
    """A realtime number with no fallback: the callback on the other instance speaks the
    apology instead of hanging up in silence."""
    scale.realtime.options = realtime_options(refuse_status=503)
    await scale.steer("app1")
    rec = await scale.place_call(REALTIME_A, [Say(ms=300), HangUp()])
    assert rec.closed_by == "server" and rec.action_status == 200
    assert f"<Say>{APOLOGY}</Say><Hangup />" in (rec.action_twiml or ""), rec.summary()
    where = scale.topology.where(rec.call_sid)
    assert where["stream"] == {"app2"} and where["action"] == {"app1"}, where


async def test_realtime_session_budget_is_shared_by_both_instances(scale: Scale) -> None:
    """With the shared budget in use by calls on both instances, either instance sends a new
    realtime call to its number's fallback mode (its gauge shows the sessions in use, its
    counter the overflow); once the calls end, realtime again."""
    hold = [Listen(), Pause(2500), HangUp()]
    calls = [asyncio.create_task(scale.place_call(REALTIME_A, hold)) for _ in range(BUDGET)]

    async def budget_used() -> bool:
        return len(await scale.leases()) >= BUDGET

    await eventually(budget_used, within=10)

    async def overflows(name: str) -> float:
        counted = await scale.metric(name, "voiceagent_realtime_overflows_total",
                                     number=FAILOVER, action="fallback_mode")  # fmt: skip
        return counted or 0.0

    before = {name: await overflows(name) for name in SERVERS}
    answers = []
    for name in SERVERS:
        await scale.steer(name)
        answers.append(await scale.voice(FAILOVER))
    for name in SERVERS:  # each instance's gauge and overflow counter
        assert await scale.metric(name, "voiceagent_realtime_sessions_in_use") == BUDGET
        assert await overflows(name) == before[name] + 1
    records = await asyncio.gather(*calls)
    assert {s for r in records for s in scale.topology.where(r.call_sid)["stream"]} == {
        "app1", "app2"}  # fmt: skip
    for status, twiml in answers:
        assert status == 200 and "<ConversationRelay" in twiml and "<Stream" not in twiml
    assert all(len(r.responses_heard()) == 1 for r in records)
    status, twiml = await scale.voice(FAILOVER)
    assert status == 200 and "<Stream" in twiml
