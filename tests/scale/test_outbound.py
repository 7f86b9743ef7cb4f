"""Outbound calls through two instances behind HAProxy round robin: the dial, `/voice`, the
AMD verdict and the status callbacks of one call land on different instances, which share
the call through Redis (its variables, number, AMD verdict and outcome)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.rig import RELAY_QUIET_S, RELAY_SPEED, TOKEN
from tests.scale.harness import Scale
from tests.scale.topology import ACCOUNT_SID, ADMIN, OUTBOUND_REALTIME, OUTBOUND_RELAY
from voiceagent.sim.callee import Callee, Callees
from voiceagent.sim.fake_twilio_rest import FakeTwilioRest

pytestmark = pytest.mark.scale

PERSON, MACHINE, NOBODY = "+14155550171", "+14155550172", "+14155550173"
CALLEES = {PERSON: Callee("person"), MACHINE: Callee("machine"), NOBODY: Callee("no-answer")}


@pytest.fixture
async def twilio(scale: Scale) -> AsyncIterator[tuple[FakeTwilioRest, Callees]]:
    """The fake Twilio REST API on the topology's port, calling back through the balancer."""
    fake = FakeTwilioRest(account_sid=ACCOUNT_SID, auth_token=TOKEN,
                          numbers=[OUTBOUND_REALTIME, OUTBOUND_RELAY],
                          url_map=scale.target.local)  # fmt: skip
    await fake.start(port=scale.topology.twilio_port)
    fake.player = callees = Callees(fake, scale.target, scale.http, CALLEES, speed=RELAY_SPEED,
                                    quiet_s=RELAY_QUIET_S)  # fmt: skip
    try:
        yield fake, callees
    finally:
        await fake.close()


async def dial(scale: Scale, from_: str, to: str, **variables: str) -> str:
    body = {"from": from_, "to": to, "variables": variables}
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with scale.http.post(scale.topology.base_url + "/calls", json=body,
                               headers=headers) as resp:  # fmt: skip
        answer: dict[str, Any] = await resp.json()
        assert resp.status == 201, answer
    return str(answer["call_sid"])


def served(scale: Scale, path: str) -> set[str]:
    """The instances HAProxy sent requests for ``path`` to."""
    return {server for server, _, _, p in scale.topology.requests() if p.startswith(path)}


@pytest.mark.parametrize("number", [OUTBOUND_REALTIME, OUTBOUND_RELAY])
async def test_voicemail_and_person_across_instances(
    scale: Scale, twilio: tuple[FakeTwilioRest, Callees], number: str
) -> None:
    """A machine gets the voicemail with the caller's variables and a person the greeting,
    whichever instance dialled, answered /voice or took the AMD verdict."""
    _, callees = twilio
    machine_sid = await dial(scale, number, MACHINE, name="Ann")
    person_sid = await dial(scale, number, PERSON, name="Bo")
    machine = await callees.wait(machine_sid, within=30)
    person = await callees.wait(person_sid, within=30)
    assert machine.amd_posted == "machine_end_beep" and machine.status == "completed"
    assert len(machine.legs) == 1 and machine.legs[0][0] > (machine.beep_at or 0)
    assert person.amd_posted == "human" and person.heard_ms > 0
    said = [r.text for s in scale.realtime.sessions if machine_sid in s.key for r in s.responses]
    asked = [r.body.messages[-1].content for r in scale.router.requests if r.body is not None]
    assert "Hi Ann, please call us back." in said + asked
    assert "Hi Bo." in [r.text for s in scale.realtime.sessions if person_sid in s.key
                        for r in s.responses] + asked  # fmt: skip
    assert served(scale, "/call-status") == {"app1", "app2"}
    assert served(scale, "/voice") == {"app1", "app2"}


async def test_no_answer_is_recorded_wherever_its_callbacks_land(
    scale: Scale, twilio: tuple[FakeTwilioRest, Callees]
) -> None:
    """A call nobody answers reaches no /voice and holds no lease; both instances report its
    final status from the shared store."""
    fake, callees = twilio
    sid = await dial(scale, OUTBOUND_REALTIME, NOBODY)
    await callees.wait(sid, within=30)
    await fake.callbacks.wait_for(
        lambda d: d.kind == "status" and d.form.get("CallSid") == sid
        and d.form.get("CallStatus") == "no-answer")  # fmt: skip
    assert sid not in await scale.leases()
    for instance in ("app1", "app2"):
        port = scale.topology.instance(instance).port
        url = f"http://127.0.0.1:{port}/calls/{sid}"
        async with scale.http.get(url, headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
            assert (await resp.json())["status"] == "no-answer"
