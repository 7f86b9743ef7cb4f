"""Unit tests of the 2026 knobs: validation paths, the TwiML they write, arms that change them,
and the replay ledger / checkpoint of ConversationRelay's applicationReconnect."""

from __future__ import annotations

from typing import Any

import pytest

from voiceagent.config import parse_config
from voiceagent.errors import ConfigError
from voiceagent.modes.relay_attributes import failover_languages, relay_attributes
from voiceagent.protocols import twiml
from voiceagent.report.arms import arm_settings
from voiceagent.session.relay_ledger import InputLedger
from voiceagent.store.live.checkpoint import dump_checkpoint, load_checkpoint

N = "+18005550101"


def _relay_number(**relay: Any) -> dict[str, Any]:
    return {"numbers": {N: {"mode": "relay-router", "relay": relay}}}


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (_relay_number(eot_threshold=2), f"numbers.{N}.relay.eot_threshold"),
        (_relay_number(speech_timeout_ms=5), f"numbers.{N}.relay.speech_timeout_ms"),
        (_relay_number(turn_detection="a b"), f"numbers.{N}.relay.turn_detection"),
        (_relay_number(failover=[{"code": "en-US"}]), f"numbers.{N}.relay.failover.0"),
        (
            {"defaults": {"realtime": {"backchannel": {"max_per_turn": 99}}}},
            "defaults.realtime.backchannel.max_per_turn",
        ),
        (
            {"defaults": {"realtime": {"upstream_reconnect": {"attempts": -1}}}},
            "defaults.realtime.upstream_reconnect.attempts",
        ),
        (
            {"defaults": {"agent": {"languages": [{"code": "es"}, {"code": "es"}]}}},
            "defaults.agent.languages",
        ),
        (
            {"defaults": {"agent": {"turn_taking": [{"name": "slow", "eagerness": "sleepy"}]}}},
            "defaults.agent.turn_taking.0.eagerness",
        ),
        (
            {"numbers": {N: {"agent": {"turn_taking": [{"name": "nothing"}]}}}},
            f"numbers.{N}.agent.turn_taking.0",
        ),
        (
            {"defaults": {"agent": {"turn_taking": [{"name": "Bad Name", "preemptible": True}]}}},
            "defaults.agent.turn_taking.0.name",
        ),
        (
            {"defaults": {"agent": {"turn_taking": [{"name": "a", "eagerness": "low"}] * 2}}},
            "defaults.agent.turn_taking",
        ),
    ],
)
def test_bad_knob_names_its_yaml_path(data: dict[str, Any], path: str) -> None:
    """A knob with a bad value fails check-config with the YAML path of that value."""
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert err.value.path == path, err.value


def test_tts_failover_needs_twilio_voice_and_names_where_it_was_set() -> None:
    """A `<Failover>` TTS backup while Inworld speaks is refused at the path that set it,
    an arm's own setting included; with `voice_source: twilio` it is accepted."""
    backup = [{"code": "en-US", "tts_provider": "Amazon"}]
    with pytest.raises(ConfigError) as err:
        parse_config(_relay_number(failover=backup))
    assert err.value.path == f"numbers.{N}.relay.failover" and "voice_source" in str(err.value)
    arms = [
        {"name": "a", "mode": "relay-router", "weight": 1},
        {"name": "b", "mode": "relay-router", "weight": 1, "relay": {"failover": backup}},
    ]
    with pytest.raises(ConfigError) as err2:
        parse_config({"numbers": {N: {"experiment": {"name": "x", "arms": arms}}}})
    assert err2.value.path == f"numbers.{N}.experiment.arms.1.relay.failover"
    same = [{"code": "en-US", "tts_provider": "Google"}]
    with pytest.raises(ConfigError, match="primary provider"):
        parse_config(_relay_number(voice_source="twilio", failover=same))
    parse_config(_relay_number(voice_source="twilio", failover=backup))  # fmt: skip


def test_knobs_are_written_into_the_conversation_relay_twiml() -> None:
    """Set knobs become their ConversationRelay attributes and `<Failover>`; unset ones are
    left out (Twilio's defaults), applicationReconnect is always explicit."""
    config = parse_config(_relay_number(
        voice_source="twilio", turn_detection="semantic", eot_threshold=0.7,
        ignore_backchannel=True, echo_prompt_filtering=True, preemptible=False,
        speech_timeout_ms=900, events=["config-updated"],
        failover=[{"code": "en-US", "tts_provider": "Amazon", "voice": "Joanna",
                   "transcription_provider": "Google"}],
    ))  # fmt: skip
    plan = config.plan_for(N, "CA1")
    assert plan is not None
    xml = twiml.conversation_relay(
        "wss://x/c", "https://x/a", relay_attributes(plan.relay, None), {},
        failover_languages(plan.relay),
    )  # fmt: skip
    for attribute in ('applicationReconnect="true"', 'turnDetection="semantic"',
                      'eotThreshold="0.7"', 'ignoreBackchannel="true"', 'preemptible="false"',
                      'echoPromptFiltering="true"', 'speechTimeout="900"',
                      'events="config-updated"'):  # fmt: skip
        assert attribute in xml
    assert ('<Failover><Language code="en-US" transcriptionProvider="Google" '
            'ttsProvider="Amazon" voice="Joanna" /></Failover>') in xml  # fmt: skip
    default = parse_config(_relay_number()).plan_for(N, "CA1")
    assert default is not None
    plain = relay_attributes(default.relay, None)
    assert plain["application_reconnect"] is True and "turn_detection" not in plain


def test_report_names_what_an_arm_changes_for_a_turn_taking_knob() -> None:
    """Any knob may differ between arms; the report's settings line names it."""
    arms = [{"name": "calm", "mode": "realtime-passthrough", "weight": 1,
             "agent": {"turn_detection": {"eagerness": "low"}}},
            {"name": "eager", "mode": "relay-router", "weight": 1,
             "relay": {"ignore_backchannel": True, "turn_detection": "on"}}]  # fmt: skip
    config = parse_config({"numbers": {N: {"experiment": {"name": "turns", "arms": arms}}}})
    settings = arm_settings(config, N)
    assert "agent.turn_detection.eagerness: low (number: auto)" in settings["calm"]
    assert "relay.ignore_backchannel: True (number: None)" in settings["eager"]
    assert "relay.turn_detection: on (number: None)" in settings["eager"]


def test_ledger_skips_replayed_inputs_in_order_then_counts_new_ones() -> None:
    """After a resume, inputs the checkpoint lists are skipped (the replay), the first new
    one closes the window, and the same words later count as a new input."""
    first = InputLedger()
    marks = [first.admit("speech", t) for t in ("Hello.", "Yes.", "Book it.")]
    assert all(marks) and len(set(marks)) == 3
    first.pending = marks[-1]
    checkpoint = load_checkpoint(dump_checkpoint(first.checkpoint("1|", ())))
    assert checkpoint is not None and checkpoint.pending == marks[-1]
    resumed = InputLedger(checkpoint)
    assert resumed.reconnects == 1 and resumed.pending == marks[-1]
    assert resumed.admit("speech", "Yes.") is None  # replays, in order
    assert resumed.admit("speech", "Book it.") is None
    assert resumed.admit("dtmf", "1") is not None  # new input: the window closes
    assert resumed.admit("speech", "Book it.") is not None  # said again: a new turn
    assert resumed.replays_skipped == 2 and resumed.inputs == 5


def test_unreadable_checkpoint_is_none() -> None:
    """A checkpoint written by something else reads as none (the leg starts afresh)."""
    assert load_checkpoint(b'{"l": "1|", "h": [1]}') is None
    assert load_checkpoint(b"not json") is None


def test_sample_config_ships_an_experiment_over_a_turn_taking_knob() -> None:
    """The committed sample has an A/B experiment whose arms differ in a turn-taking knob."""
    from pathlib import Path

    from voiceagent.config import load_config

    config = load_config(Path(__file__).parents[2] / "config" / "voiceagent.yaml")
    changes = [line for arm in arm_settings(config, "+18005550104").values() for line in arm]
    assert any(line.startswith("agent.turn_detection.eagerness") for line in changes), changes


def test_config_updated_in_either_documented_shape_names_the_provider() -> None:
    """Twilio's failover notice is read as its own `configUpdated` type and as an `info` of
    that name (the docs allow both readings); each names a provider, counted on the call."""
    from voiceagent.protocols import conversation_relay as cr
    from voiceagent.session.call import CallSession
    from voiceagent.session.relay_call import RelayCall

    call = CallSession(call_sid="CA" + "1" * 32, number=N, mode="relay-router")
    machine = RelayCall(call, instructions="", dtmf_template="{digit}", apology="")
    own = cr.parse_inbound('{"type": "configUpdated", "transcriptionProvider": "Google"}')
    info = cr.parse_inbound('{"type": "info", "name": "configUpdated", "value": "Amazon"}')
    assert machine.receive_phone(own, 0.0) == [] and machine.receive_phone(info, 0.0) == []
    assert call.counters.provider_switches == 2 and call.providers == ["Google", "Amazon"]
