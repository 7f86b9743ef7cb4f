"""Outbound calls end to end: `POST /calls` → the fake Twilio REST API → the callee it plays
(a person, an answering machine, nobody, a busy line) → `/voice`, the AMD and status
callbacks, and the agent in both modes, all over real sockets."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.rig import ADMIN, StartRig, rig_config, running_outbound
from voiceagent.config import parse_config
from voiceagent.report.command import load_report
from voiceagent.report.render import render
from voiceagent.session.call import EndReason
from voiceagent.sim.callee import Callee
from voiceagent.sim.script import HangUp, Listen, Pause
from voiceagent.web.keys import OUTBOUND

OUT_RT, OUT_RELAY, OUT_HANGUP, OUT_HOURS, OUT_AGENT_FIRST = (
    "+18005550111", "+18005550112", "+18005550113", "+18005550114", "+18005550115")  # fmt: skip
PERSON, MACHINE, NOBODY, BUSY, BLOCKED = (
    "+14155550001", "+14155550002", "+14155550003", "+14155550004", "+14155550005")  # fmt: skip
GREETING = "Hi {{name}}, this is the clinic."
MESSAGE = "Hi {{name}}, this is the clinic calling about tomorrow. Please call us back."
CALLEES = {PERSON: Callee("person"), MACHINE: Callee("machine"), NOBODY: Callee("no-answer"),
           BUSY: Callee("busy")}  # fmt: skip


def outbound_config(tmp_path: Path) -> Any:
    dnc = tmp_path / "do-not-call.txt"
    dnc.write_text(f"# people who asked us not to call\n{BLOCKED}\n")
    now = datetime.now(UTC)
    closed = {"timezone": "UTC", "from": (now + timedelta(hours=2)).strftime("%H:%M"),
              "to": (now + timedelta(hours=3)).strftime("%H:%M")}  # fmt: skip
    leave = {"action": "leave_message", "message": MESSAGE}
    agent = {"greeting": GREETING, "instructions": "You remind {{name}} of an appointment."}
    rt, relay = "realtime-passthrough", "relay-router"
    numbers = {
        OUT_RT: {"mode": rt, "agent": agent, "outbound": {"amd": True, "voicemail": leave}},
        OUT_RELAY: {"mode": relay, "agent": agent, "outbound": {"amd": True, "voicemail": leave}},
        OUT_HANGUP: {"mode": rt, "outbound": {"amd": True, "voicemail": {"action": "hangup"}}},
        OUT_HOURS: {"mode": rt, "outbound": {"calling_hours": closed}},
        OUT_AGENT_FIRST: {"mode": rt, "agent": agent,
                          "outbound": {"amd": True, "first_speaker": "agent", "voicemail": leave}},
    }  # fmt: skip
    config = rig_config(**numbers)
    return config.model_copy(update={"do_not_call": str(dnc)})


@pytest.fixture
def config(tmp_path: Path) -> Any:
    return outbound_config(tmp_path)


def texts(rig: Any, call_sid: str) -> list[str]:
    """What the fake Inworld Realtime said on the call's sessions, in order."""
    return [r.text for s in rig.realtime.sessions if call_sid in s.key for r in s.responses]


async def test_person_realtime_hears_the_greeting_after_amd(
    start_rig: StartRig, config: Any
) -> None:
    """A person: the call screens silently until AMD hears a human, then the agent greets with
    the call's variables and converses; the outcome is completed, answered by human."""
    async with running_outbound(start_rig, CALLEES, config=config) as out:
        status, body = await out.dial(OUT_RT, PERSON, name="Ana")
        assert status == 201 and body["status"] == "queued"
        sid = body["call_sid"]
        record = await out.callees.wait(sid)
        assert record.amd_posted == "human" and "<Pause" in record.twiml[0]
        assert len(record.legs) == 1 and record.heard_ms > 0
        assert texts(out.rig, sid)[0] == "Hi Ana, this is the clinic."
        session = await out.rig.ended(sid)
        assert session.mode == "realtime-passthrough"
        plan = await out.rig.services.stores.call_state.get_plan(sid)
        assert (
            plan is not None and plan.direction == "outbound" and plan.variables == {"name": "Ana"}
        )
        shared = await out.rig.app[OUTBOUND].store.get(sid)
        assert shared is not None and shared.answered_by == "human" and shared.arm is None
        call = out.twilio.calls[sid]
        assert call.status == "completed" and call.params["MachineDetection"] == "DetectMessageEnd"
        assert call.params["AsyncAmd"] == "true"


async def test_person_relay_hears_the_greeting_after_amd(start_rig: StartRig, config: Any) -> None:
    """The same in relay mode: after AMD's human verdict the Router greets with the variables."""
    async with running_outbound(start_rig, CALLEES, config=config) as out:
        status, body = await out.dial(OUT_RELAY, PERSON, name="Ben")
        assert status == 201
        record = await out.callees.wait(body["call_sid"])
        assert record.amd_posted == "human" and len(record.legs) == 1
        assert record.legs[0][1].protocol == "conversation-relay"
        greeting = out.rig.router.requests[0].body
        assert (
            greeting is not None and greeting.messages[-1].content == "Hi Ben, this is the clinic."
        )


async def test_voicemail_realtime_is_left_after_the_beep(start_rig: StartRig, config: Any) -> None:
    """A machine: nothing is said before the beep; then one response with exactly the
    message, and the agent hangs up."""
    async with running_outbound(start_rig, CALLEES, config=config) as out:
        _, body = await out.dial(OUT_RT, MACHINE, name="Cleo")
        sid = body["call_sid"]
        record = await out.callees.wait(sid)
        assert record.amd_posted == "machine_end_beep" and record.beep_at is not None
        ((started, leg),) = record.legs
        assert started > record.beep_at and leg.heard_ms > 0
        message = "Hi Cleo, this is the clinic calling about tomorrow. Please call us back."
        assert texts(out.rig, sid) == [message]
        session = await out.rig.ended(sid)
        assert session.end_reason is EndReason.AGENT_ENDED
        assert out.twilio.calls[sid].status == "completed"


async def test_voicemail_relay_is_the_reply(start_rig: StartRig, config: Any) -> None:
    """In relay mode the message is the one reply (Router asked to repeat it exactly), then
    the agent ends the session."""
    async with running_outbound(start_rig, CALLEES, config=config) as out:
        _, body = await out.dial(OUT_RELAY, MACHINE, name="Dee")
        sid = body["call_sid"]
        record = await out.callees.wait(sid)
        assert record.amd_posted == "machine_end_beep" and record.legs[0][0] > (record.beep_at or 0)
        (request,) = out.rig.router.requests
        assert request.body is not None
        message = "Hi Dee, this is the clinic calling about tomorrow. Please call us back."
        assert request.body.messages[-1].content == message
        assert (await out.rig.ended(sid)).end_reason is EndReason.AGENT_ENDED


async def test_agent_first_is_cut_for_the_voicemail(start_rig: StartRig, config: Any) -> None:
    """With first_speaker: agent the agent greets at once; the machine verdict moves the call
    to the voicemail leg."""
    async with running_outbound(start_rig, CALLEES, config=config) as out:
        _, body = await out.dial(OUT_AGENT_FIRST, MACHINE, name="Eve")
        record = await out.callees.wait(body["call_sid"])
        assert sum("<Connect" in doc for doc in record.twiml) == 2  # the first leg was cut
        assert "<Pause" not in record.twiml[0] and len(record.legs) == 1
        said = texts(out.rig, body["call_sid"])
        assert said[0] == "Hi Eve, this is the clinic." and said[-1].startswith("Hi Eve, this")


async def test_hangup_policy_ends_the_call_without_an_agent(
    start_rig: StartRig, config: Any
) -> None:
    """voicemail action hangup: the machine verdict hangs up through the REST API; no Inworld
    session was opened and the outcome names the machine."""
    async with running_outbound(start_rig, CALLEES, config=config) as out:
        _, body = await out.dial(OUT_HANGUP, MACHINE)
        sid = body["call_sid"]
        record = await out.callees.wait(sid)
        assert record.legs == [] and record.status == "completed"
        updates = [r for r in out.twilio.received if r.path.endswith(f"/Calls/{sid}.json")]
        assert [u.param("Status") for u in updates] == ["completed"]
        assert texts(out.rig, sid) == []
        await out.twilio.callbacks.wait_for(
            lambda d: d.kind == "status" and d.form.get("CallStatus") == "completed"
        )
        shared = await out.rig.app[OUTBOUND].store.get(sid)
        assert shared is not None and shared.answered_by == "machine_end_beep"


@pytest.mark.parametrize(("callee", "outcome"), [(NOBODY, "no-answer"), (BUSY, "busy")])
async def test_unanswered_calls_are_recorded_and_hold_no_session(
    start_rig: StartRig, config: Any, callee: str, outcome: str
) -> None:
    """No-answer and busy come back through /call-status: recorded, counted per number and
    arm, with no /voice and no Realtime session lease."""
    async with running_outbound(start_rig, CALLEES, config=config) as out:
        _, body = await out.dial(OUT_RT, callee)
        sid = body["call_sid"]
        await out.callees.wait(sid)
        await out.twilio.callbacks.wait_for(
            lambda d: d.kind == "status" and d.form.get("CallStatus") == outcome
        )
        shared = await out.rig.app[OUTBOUND].store.get(sid)
        assert shared is not None and shared.status == outcome and shared.final
        assert await out.rig.services.budget.in_use() == 0 and texts(out.rig, sid) == []
        metrics = await (await out.rig.http.get(out.rig.base_url + "/metrics")).text()
        assert (
            f'voiceagent_outbound_calls_total{{answered_by="none",arm="",number="{OUT_RT}",'
            f'status="{outcome}"}} 1.0' in metrics
        )


async def test_calling_hours_and_do_not_call_are_refused(start_rig: StartRig, config: Any) -> None:
    """Outside calling hours and to a do-not-call number: 409 naming why, counted, and
    nothing reaches Twilio; a number without outbound settings is 422."""
    async with running_outbound(start_rig, CALLEES, config=config) as out:
        status, body = await out.dial(OUT_HOURS, PERSON)
        assert (status, body["error"]) == (409, "calling_hours")
        status, body = await out.dial(OUT_RT, BLOCKED)
        assert (status, body["error"]) == (409, "do_not_call")
        status, body = await out.dial("+18005550101", PERSON)
        assert (status, body["error"]) == (422, "not_outbound")
        assert not out.twilio.calls
        metrics = await (await out.rig.http.get(out.rig.base_url + "/metrics")).text()
        assert (
            f'voiceagent_outbound_dials_total{{number="{OUT_RT}",result="do_not_call"}} 1.0'
            in metrics
        )


async def test_creates_keep_to_the_cps_limit(start_rig: StartRig, config: Any) -> None:
    """Eight dials at once with OUTBOUND_CPS=10 reach Twilio at 10 per second: any k + 1
    consecutive creates span at least (k - 1) x 100 ms (one gap may shrink by the requests'
    own latency jitter, none accumulates), and all eight take about 700 ms."""
    async with running_outbound(start_rig, CALLEES, config=config, outbound_cps=10.0) as out:
        answers = await asyncio.gather(*(out.dial(OUT_RT, NOBODY) for _ in range(8)))
        assert [status for status, _ in answers] == [201] * 8
        creates = [r.at for r in out.twilio.received if r.path.endswith("/Calls.json")]
        assert len(creates) == 8 and creates[-1] - creates[0] >= 0.55
        for i, j in itertools.combinations(range(8), 2):
            assert creates[j] - creates[i] >= (j - i - 1) * 0.1 - 0.005, (i, j)


async def test_calls_endpoint_wants_the_admin_token(start_rig: StartRig, config: Any) -> None:
    """Without the bearer token /calls is 401, and a bad body is 400."""
    async with running_outbound(start_rig, CALLEES, config=config) as out:
        url = out.rig.base_url + "/calls"
        async with out.rig.http.post(url, json={"from": OUT_RT, "to": PERSON}) as resp:
            assert resp.status == 401
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with out.rig.http.post(url, data=b"[1]", headers=headers) as resp:
            assert resp.status == 400


async def test_outcomes_are_in_the_records_and_the_report(start_rig: StartRig, config: Any) -> None:
    """Each dialled call's final status and AMD verdict land in the records; the report counts
    them per number and arm beside the connected legs."""
    async with running_outbound(start_rig, CALLEES, config=config, records=True) as out:
        sids = [(await out.dial(OUT_RT, to, name="Ann"))[1]["call_sid"]
                for to in (MACHINE, NOBODY, BUSY)]  # fmt: skip
        for sid in sids:
            await out.callees.wait(sid)
        for status in ("completed", "no-answer", "busy"):
            await out.twilio.callbacks.wait_for(
                lambda d, s=status: d.kind == "status" and d.form.get("CallStatus") == s
            )
        database = out.rig.settings.database_url
        await out.rig.stop()  # flushes the records
    report = await load_report(database)
    (stats,) = [s for s in report.outbound if s.number == OUT_RT]
    assert (stats.dialled, stats.statuses) == (3, {"busy": 1, "completed": 1, "no-answer": 1})
    assert stats.answered_by == {"machine_end_beep": 1}
    assert (
        "outbound arm realtime-passthrough: 3 dialled: busy 1, completed 1, no-answer 1; "
        "answered by machine_end_beep 1" in render(report)
    )


async def test_a_dial_waits_for_a_free_realtime_session(start_rig: StartRig, config: Any) -> None:
    """With one Realtime session in the budget, a second dial is created only once the first
    call's session is released; it waits instead of failing over."""
    long_talk = Callee("person", script=(Listen(), Pause(ms=1500), HangUp()))
    callees = CALLEES | {PERSON: long_talk}
    async with running_outbound(start_rig, callees, config=config,
                                realtime_session_budget=1) as out:  # fmt: skip
        first = asyncio.create_task(out.dial(OUT_RT, PERSON, name="A"))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(out.dial(OUT_RT, NOBODY))
        (_, one), (status, _) = await first, await second
        record = await out.callees.wait(one["call_sid"])
        creates = [r.at for r in out.twilio.received if r.path.endswith("/Calls.json")]
        assert status == 201 and len(creates) == 2
        session = await out.rig.ended(one["call_sid"])
        assert record.heard_ms > 0 and session.end_reason is not None
        assert creates[1] - creates[0] >= 1.5  # the first call's whole conversation


async def test_a_ringing_call_holds_its_realtime_session(start_rig: StartRig, config: Any) -> None:
    """A dialled call holds a lease of the shared session budget while it rings (a reservation
    taken before the create, so no other instance can take the slot meanwhile): with one
    session, the next dial waits for the first one's final status, which frees the slot."""
    async with running_outbound(start_rig, CALLEES, config=config,
                                realtime_session_budget=1) as out:  # fmt: skip
        status, first = await out.dial(OUT_RT, NOBODY)
        assert status == 201 and await out.rig.services.budget.in_use() == 1
        status, _ = await out.dial(OUT_RT, PERSON, name="B")
        assert status == 201
        rang = out.twilio.calls[first["call_sid"]]
        creates = [r.at for r in out.twilio.received if r.path.endswith("/Calls.json")]
        assert rang.status == "no-answer"
        assert creates[1] - creates[0] >= 0.45  # the first one rang out (no_answer_s 0.5)


async def test_max_concurrent_holds_the_next_dial_until_a_call_ends(
    start_rig: StartRig, tmp_path: Path
) -> None:
    """A number with max_concurrent 1 dials its second call only after the first one's final
    status arrived."""
    data = outbound_config(tmp_path).model_dump(by_alias=True, exclude_none=True)
    data["numbers"][OUT_HOURS]["outbound"] = {"max_concurrent": 1}
    async with running_outbound(start_rig, CALLEES, config=parse_config(data)) as out:
        answers = await asyncio.gather(out.dial(OUT_HOURS, NOBODY), out.dial(OUT_HOURS, BUSY))
        assert [status for status, _ in answers] == [201, 201]
        first = out.twilio.calls[answers[0][1]["call_sid"]]
        creates = [r.at for r in out.twilio.received if r.path.endswith("/Calls.json")]
        assert first.status == "no-answer" or first.end_time is not None
        assert creates[1] - creates[0] >= 0.5  # the first one rang out (no_answer_s)


async def test_callbacks_need_twilios_signature(start_rig: StartRig, config: Any) -> None:
    """Unsigned status and AMD callbacks are refused with 403 and change nothing; a signed one
    about an unknown call is accepted and ignored."""
    async with running_outbound(start_rig, CALLEES, config=config) as out:
        _, body = await out.dial(OUT_HANGUP, NOBODY)
        sid = body["call_sid"]
        await out.callees.wait(sid)
        forged = {"CallSid": sid, "CallStatus": "completed", "AnsweredBy": "human"}
        for path in ("/call-status", "/call-status/amd"):
            status, _ = await out.rig.post_signed(path, forged, sign=False)
            assert status == 403
        shared = await out.rig.app[OUTBOUND].store.get(sid)
        assert shared is not None and shared.status == "no-answer" and shared.answered_by is None
        other = {"CallSid": "CA" + "1" * 32, "CallStatus": "completed"}
        assert (await out.rig.post_signed("/call-status", other))[0] == 204
