"""The shared Inworld Realtime session budget, as `/voice` and the calls use it."""

from __future__ import annotations

from tests.conftest import StartRig
from tests.rig import FAILOVER, REALTIME_A, rig_config, webhook_form
from voiceagent.sim.script import HangUp, Listen


async def _metric(rig: object, name: str) -> str:
    exposition = rig.services.metrics.exposition().decode()  # type: ignore[attr-defined]
    return "\n".join(line for line in exposition.splitlines() if line.startswith(name))


async def test_at_the_cap_a_realtime_call_goes_straight_to_its_fallback_mode(
    start_rig: StartRig,
) -> None:
    """With every session leased, /voice answers a realtime number with its fallback mode's
    TwiML at once (no failed attempt, no apology), and counts the overflow."""
    rig = await start_rig(realtime_session_budget=1)
    status, first = await rig.post_signed("/voice", webhook_form(FAILOVER))
    assert status == 200 and "<Stream" in first
    status, second = await rig.post_signed("/voice", webhook_form(FAILOVER))
    assert status == 200 and "<ConversationRelay" in second and "<Say>" not in second
    assert 'action="fallback_mode"' in await _metric(rig, "voiceagent_realtime_overflows_total")
    assert "voiceagent_realtime_sessions_in_use 1.0" in await _metric(
        rig, "voiceagent_realtime_sessions_in_use"
    )


async def test_overflow_policies_busy_and_twilio_fallback(start_rig: StartRig) -> None:
    """A number without a fallback mode gets 503 (Twilio's fallback URL); `overflow: busy`
    says its message and hangs up."""
    busy = {"mode": "realtime-passthrough", "overflow": {"policy": "busy", "message": "Busy."}}
    rig = await start_rig(config=rig_config(**{"+18005550177": busy}), realtime_session_budget=1)
    assert (await rig.post_signed("/voice", webhook_form(REALTIME_A)))[0] == 200
    status, _ = await rig.post_signed("/voice", webhook_form(REALTIME_A))
    assert status == 503
    status, body = await rig.post_signed("/voice", webhook_form("+18005550177"))
    assert status == 200 and "<Say>Busy.</Say><Hangup />" in body


async def test_a_finished_call_releases_its_session_lease(start_rig: StartRig) -> None:
    """When a realtime call's stream ends, its lease is released: the next call gets one."""
    rig = await start_rig(realtime_session_budget=1)
    record = await rig.place_call(REALTIME_A, [Listen(), HangUp()])
    await rig.ended(record.call_sid)
    assert await rig.services.budget.in_use() == 0
    status, body = await rig.post_signed("/voice", webhook_form(REALTIME_A))
    assert status == 200 and "<Stream" in body
