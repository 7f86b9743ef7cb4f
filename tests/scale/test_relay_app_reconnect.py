"""ConversationRelay `applicationReconnect` behind HAProxy: Twilio reopens a dropped socket and
the call goes on on whichever instance takes it, even when the first one died."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest

from tests.rig import RELAY
from tests.scale.harness import Scale, eventually
from voiceagent.sim.script import Drop, HangUp, Listen, Pause, Say

pytestmark = pytest.mark.scale


def _users(request: Any) -> list[str]:
    return [m["content"] for m in request.messages if m["role"] == "user"]


async def _first_answer_played(scale: Scale) -> None:
    """Until the greeting and the first answer were asked for and had time to play."""

    async def asked_twice() -> bool:
        return len(scale.router.requests) >= 2

    await eventually(asked_twice, within=10)
    await asyncio.sleep(0.5)


async def test_reconnect_lands_on_the_other_instance_and_answers_nothing_twice(
    scale: Scale,
) -> None:
    """A socket dropped on app1 is reopened through the balancer onto app2: the call keeps its
    conversation, the replayed input is not answered again, no action callback runs before the
    end, and the call's record (PostgreSQL) counts one reconnect."""
    script = [Listen(), Say("Remember banana."), Listen(), Pause(1500), Drop(),
              Say("What was it?"), Listen(), HangUp()]  # fmt: skip
    sid, call = await scale.stream_on("app1", RELAY, script)
    await _first_answer_played(scale)
    await scale.steer("app2")  # during the pause: the reconnect is the next request
    rec = await call
    assert rec.reconnects == 1 and rec.replayed == 1 and rec.session_status == "completed"
    where = scale.topology.where(sid)
    assert where["stream"] == {"app1", "app2"} and len(where["action"]) == 1, where
    requests = scale.router.requests
    assert len(requests) == 3, [_users(r) for r in requests]  # greeting and two answers
    assert _users(requests[2]) == ["Remember banana.", "What was it?"]
    assert requests[2].messages[-2]["content"].startswith("You said: Remember banana.")
    assert rec.turns[-1].clips and rec.turns[-1].clips[0].valid
    rows: list[Any] = []

    async def both_legs_recorded() -> bool:  # each leg adds its counters when it ends
        rows[:] = await scale.rows("SELECT * FROM calls WHERE call_sid = :sid", sid=sid)
        return bool(rows) and rows[0].reconnects == 1 and rows[0].turns == 2

    await eventually(both_legs_recorded, within=10, every=0.2)
    assert rows[0].end_reason == "caller_hangup" and rows[0].ended_at is not None


async def test_instance_killed_mid_call_the_call_resumes_on_the_survivor(scale: Scale) -> None:
    """SIGKILL of the instance holding the socket: Twilio reconnects through the balancer,
    the survivor resumes the call from the shared checkpoint and answers the next input with
    the whole conversation."""
    script = [Listen(), Say("My name is Ada."), Listen(), Pause(4000),
              Say("What is my name?"), Listen(), HangUp()]  # fmt: skip
    sid, call = await scale.stream_on("app1", RELAY, script)
    await _first_answer_played(scale)
    scale.topology.instance("app1").signal(signal.SIGKILL)
    rec = await call
    assert rec.reconnects == 1 and rec.session_status == "completed", rec.summary()
    assert "app2" in scale.topology.where(sid)["stream"]
    last = scale.router.requests[-1]
    assert _users(last) == ["My name is Ada.", "What is my name?"]
    assert len(scale.router.requests) == 3 and rec.turns[-1].clips
