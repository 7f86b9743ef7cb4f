"""Outbound rules, legs and pacing without sockets: calling hours, do-not-call lists, variables,
the leg /voice serves for each AMD verdict, and the CPS slots."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from voiceagent.config import parse_config
from voiceagent.config_models import CallingHours, OutboundConfig, Voicemail
from voiceagent.errors import ConfigError, OutboundRefused, RefusalKind
from voiceagent.outbound.batch import parse_rate
from voiceagent.outbound.legs import AmdAction, Leg, amd_action, choose_leg, leg_plan
from voiceagent.outbound.pacing import MemoryPacer
from voiceagent.outbound.rules import DoNotCall, check_dial, clean_variables, render, within_hours
from voiceagent.store.live.outbound_state import MemoryOutboundStore, OutboundCall

OURS, THEM = "+18005550111", "+14155550001"
NOON_UTC = datetime(2026, 12, 7, 17, 0, tzinfo=UTC)  # 12:00 in New York


def config(tmp_path: Path, **outbound: object) -> object:
    return parse_config({"numbers": {
        OURS: {"mode": "realtime-passthrough", "outbound": outbound},
        "+18005550101": {"mode": "relay-router"},
    }})  # fmt: skip


def hours(start: str, end: str, zone: str = "America/New_York") -> CallingHours:
    return CallingHours.model_validate({"timezone": zone, "from": start, "to": end})


def test_calling_hours_are_local_and_may_span_midnight() -> None:
    """The window is read in its own time zone; from > to spans midnight."""
    assert within_hours(hours("09:00", "20:00"), NOON_UTC)
    assert not within_hours(hours("13:00", "20:00"), NOON_UTC)
    assert within_hours(hours("22:00", "13:00"), NOON_UTC)
    assert not within_hours(hours("09:00", "20:00", "Asia/Tokyo"), NOON_UTC)  # 02:00 there


def test_check_dial_refuses_with_the_reason(tmp_path: Path) -> None:
    """Not an outbound number, a bad 'to', outside hours: OutboundRefused with its kind."""
    cfg: object = config(
        tmp_path, calling_hours={"timezone": "UTC", "from": "18:00", "to": "19:00"}
    )
    lists = DoNotCall(cfg)  # type: ignore[arg-type]
    cases = [("+18005550101", THEM, RefusalKind.NOT_OUTBOUND),
             (OURS, "4155550001", RefusalKind.INVALID),
             (OURS, THEM, RefusalKind.CALLING_HOURS)]  # fmt: skip
    for from_, to, kind in cases:
        with pytest.raises(OutboundRefused) as caught:
            check_dial(cfg, lists, from_, to, NOON_UTC)  # type: ignore[arg-type]
        assert caught.value.kind is kind


def test_do_not_call_lists_are_checked_and_validated_at_load(tmp_path: Path) -> None:
    """A listed number is refused whatever the hours; a bad line fails the config load,
    naming the file and the line."""
    good = tmp_path / "dnc.txt"
    good.write_text(f"# comment\n\n{THEM}  # asked on 2026-12-01\n")
    cfg = parse_config({"do_not_call": str(good), "numbers": {
        OURS: {"mode": "realtime-passthrough", "outbound": {}}}})  # fmt: skip
    with pytest.raises(OutboundRefused) as caught:
        check_dial(cfg, DoNotCall(cfg), OURS, THEM, NOON_UTC)
    assert caught.value.kind is RefusalKind.DO_NOT_CALL
    bad = tmp_path / "bad.txt"
    bad.write_text("+14155550001\n415-555-0002\n")
    with pytest.raises(ConfigError, match=r"line 2 is not an E\.164 number"):
        parse_config({"numbers": {OURS: {"mode": "relay-router",
                                          "outbound": {"do_not_call": str(bad)}}}})  # fmt: skip


def test_outbound_config_is_validated() -> None:
    """leave_message needs a message; an unknown time zone and a bad time are errors."""
    with pytest.raises(ValueError, match="needs a 'message'"):
        Voicemail(action="leave_message")
    with pytest.raises(ValueError, match="unknown time zone"):
        hours("09:00", "20:00", "Mars/Olympus")
    with pytest.raises(ValueError):
        hours("9am", "20:00")


def test_variables_fill_templates_and_are_bounded() -> None:
    """{{name}} placeholders are filled, unknown ones render empty; bad names are refused."""
    assert render("Hi {{ name }}, {{missing}}bye", {"name": "Ana"}) == "Hi Ana, bye"
    assert clean_variables({"name": "Ana", "n": 3}) == {"name": "Ana", "n": "3"}
    with pytest.raises(OutboundRefused):
        clean_variables({"bad name": "x"})
    with pytest.raises(OutboundRefused):
        clean_variables({"long": "x" * 501})


def test_each_verdict_picks_its_leg() -> None:
    """Screening while AMD listens (callee first), the agent for a person or no verdict,
    the voicemail or a hang-up for a machine, a hang-up for a fax."""
    leave = OutboundConfig(amd=True, voicemail=Voicemail(action="leave_message", message="m"))
    hang = OutboundConfig(amd=True)
    agent_first = leave.model_copy(update={"first_speaker": "agent"})
    assert choose_leg(leave, None) is Leg.SCREEN and choose_leg(agent_first, None) is Leg.AGENT
    assert choose_leg(OutboundConfig(), None) is Leg.AGENT
    assert choose_leg(leave, "human") is Leg.AGENT and choose_leg(leave, "timeout") is Leg.AGENT
    assert choose_leg(leave, "machine_end_silence") is Leg.VOICEMAIL
    assert choose_leg(hang, "machine_end_beep") is Leg.HANG_UP
    assert choose_leg(leave, "fax") is Leg.HANG_UP
    assert amd_action(leave, "human") is AmdAction.REDIRECT
    assert amd_action(agent_first, "unknown") is AmdAction.NOTHING
    assert amd_action(agent_first, "machine_end_other") is AmdAction.REDIRECT
    assert amd_action(hang, "machine_end_beep") is AmdAction.HANG_UP


def test_leg_plans_say_who_speaks_first() -> None:
    """The agent stays silent on a callee-first leg with no verdict yet; the voicemail leg
    carries the rendered message; every leg is outbound with its variables."""
    cfg = parse_config({"numbers": {OURS: {"mode": "relay-router", "agent": {
        "greeting": "Hi {{name}}"}, "relay": {"greeting_source": "twilio"}}}})  # fmt: skip
    plan = cfg.plan_for(OURS, "CA" + "0" * 32)
    assert plan is not None
    leave = OutboundConfig(voicemail=Voicemail(action="leave_message", message="Bye {{name}}"))
    quiet = leg_plan(plan, leave, {"name": "Ana"}, Leg.AGENT, amd=None)
    assert quiet.agent.greeting == "" and not quiet.realtime.greet_first
    assert quiet.direction == "outbound" and quiet.variables == {"name": "Ana"}
    greets = leg_plan(plan, leave, {"name": "Ana"}, Leg.AGENT, amd="human")
    assert greets.agent.greeting == "Hi Ana" and greets.voicemail is None
    message = leg_plan(plan, leave, {"name": "Ana"}, Leg.VOICEMAIL, amd="machine_end_beep")
    assert message.voicemail == "Bye Ana" and message.relay.greeting_source == "inworld"


async def test_the_pacer_spaces_slots_by_the_rate() -> None:
    """Back-to-back slots at 4 CPS wait 0, 0.25, 0.5 s; after a quiet second, none."""
    clock = [100.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    pacer = MemoryPacer(4.0, clock=lambda: clock[0], sleep=sleep)
    assert [await pacer.slot() for _ in range(3)] == [0.0, 0.25, 0.5]
    clock[0] += 2.0
    assert await pacer.slot() == 0.0 and waits == [0.25, 0.5]


def test_rates_parse() -> None:
    """1/s, 30/m, 600/h and plain numbers are calls per second; nonsense is refused."""
    assert [parse_rate(r) for r in ("2", "1/s", "30/m", "600/h")] == [2.0, 1.0, 0.5, 1 / 6]
    with pytest.raises(ValueError):
        parse_rate("fast")


async def test_a_number_counts_its_calls_until_a_final_status() -> None:
    """Dialled calls count against max_concurrent until their final status arrives."""
    store = MemoryOutboundStore()
    for sid in ("CA1", "CA2"):
        await store.put(OutboundCall(sid, OURS, THEM))
    assert await store.active(OURS) == 2
    await store.update("CA1", status="in-progress")
    assert await store.update("CA2", status="no-answer") is not None
    assert (await store.update("CA2", status="ringing"))[1]  # type: ignore[index]
    assert await store.active(OURS) == 1 and (await store.get("CA2")).final  # type: ignore[union-attr]
