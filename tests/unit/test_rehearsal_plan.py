"""What `voiceagent simulate` plans to call for a config (pure: no sockets)."""

from __future__ import annotations

import random

from voiceagent.config import load_config, parse_config
from voiceagent.modes.realtime_passthrough import RealtimePassthrough
from voiceagent.modes.registry import ModeName, ModeRegistry
from voiceagent.modes.relay_router import RelayRouter
from voiceagent.sim.rehearsal import SAMPLE
from voiceagent.sim.rehearsal_plan import capacity_warning, example_arguments, plan_rehearsal

MODES = ModeRegistry([RealtimePassthrough(), RelayRouter()])


def test_example_arguments_take_examples_enums_defaults_then_types() -> None:
    """Each required property gets its example, enum value or default, else a typed value."""
    schema = {
        "type": "object",
        "required": ["a", "b", "c", "d", "e"],
        "properties": {
            "a": {"type": "string", "examples": ["A-1"]},
            "b": {"enum": ["x", "y"]},
            "c": {"type": "integer", "default": 7},
            "d": {"type": "boolean"},
            "e": {"type": "string"},
            "optional": {"type": "string"},
        },
    }
    assert example_arguments(schema) == {"a": "A-1", "b": "x", "c": 7, "d": True, "e": "test"}


def test_the_sample_plan_reaches_every_number_and_arm_with_its_tool_scenarios() -> None:
    """Nine calls reach the sample's seven numbers (two outbound ones) and both A/B arms; each
    tool number gets its weather, transfer and goodbye scenarios; the untested failover is
    named."""
    config = load_config(SAMPLE)
    plan = plan_rehearsal(config, None, 9, True, random.Random(1))
    reached = {(n, config.plan_for(n, sid).arm) for n, sid in plan.calls}  # type: ignore[union-attr]
    assert reached == {
        ("+18005550101", None), ("+18005550102", None), ("+18005550103", "realtime"),
        ("+18005550103", "relay"), ("+18005550104", None), ("+18005550105", None),
        ("+18005550106", None), ("+18005550107", None),
    }  # fmt: skip
    names = sorted((n, s.name) for n, _, s in plan.scenarios)
    assert names == [
        (n, s) for n in ("+18005550104", "+18005550105")
        for s in ("agent ends", "tool get_weather", "transfer to front_desk")
    ]  # fmt: skip
    assert plan.warnings == [
        "+18005550103: fallback_mode relay-router is not rehearsed "
        "(the fake Inworld never refuses or drops a session)"
    ]


def test_more_realtime_calls_at_once_than_the_session_budget_are_named() -> None:
    """Thirty realtime calls thirty at a time exceed a budget of 20 (the excess would be
    refused); ten at a time do not."""
    config = parse_config({"numbers": {"+14155550140": {"mode": "realtime-passthrough"}}}, "t")
    plan = plan_rehearsal(config, None, 30, True, random.Random(2))
    warning = capacity_warning(config, plan, 30, 20, MODES)
    assert warning is not None and warning.startswith(
        "up to 30 realtime calls at once, over REALTIME_SESSION_BUDGET=20"
    )
    assert capacity_warning(config, plan, 10, 20, MODES) is None


class _SipMode:
    """A stand-in mode whose phone socket speaks a protocol the simulated Twilio does not."""

    name = ModeName.RELAY_ROUTER
    phone_protocol = "sip"
    holds_realtime_session = False


def test_numbers_whose_mode_the_simulated_twilio_cannot_play_are_left_out_and_named() -> None:
    """With relay-router served over a protocol the simulator lacks, its numbers and arms are
    not called and each is named once; the realtime ones still are."""
    config = load_config(SAMPLE)
    plan = plan_rehearsal(config, None, 9, False, random.Random(1))
    plan.keep_playable(config, ModeRegistry([RealtimePassthrough(), _SipMode()]))  # type: ignore[list-item]
    assert {n for n, _ in plan.calls} == {
        "+18005550101", "+18005550103", "+18005550104", "+18005550106"}  # fmt: skip
    assert [w for w in plan.warnings if "cannot play" in w] == [
        "+18005550102: the simulated Twilio cannot play relay-router; not called",
        "+18005550103 arm relay: the simulated Twilio cannot play relay-router; not called",
        "+18005550105: the simulated Twilio cannot play relay-router; not called",
        "+18005550107: the simulated Twilio cannot play relay-router; not called",
    ]
