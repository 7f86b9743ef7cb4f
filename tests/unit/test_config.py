"""Unit tests of per-number YAML config validation and call plans."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from voiceagent.config import Config, load_config, parse_config
from voiceagent.errors import ConfigError

SAMPLE = Path(__file__).parents[2] / "config" / "voiceagent.yaml"


def test_sample_config_has_both_modes() -> None:
    """The committed sample validates and has a number of each mode."""
    config = load_config(SAMPLE)
    modes = {n.mode for n in config.numbers.values()}
    assert {"realtime-passthrough", "relay-router"} <= modes


def test_unknown_key_fails_with_yaml_path() -> None:
    """An unknown key is rejected, naming its YAML path."""
    with pytest.raises(ConfigError) as err:
        parse_config({"numbers": {"+18005550101": {"mode": "relay-router", "voise": "x"}}})
    assert err.value.path == "numbers.+18005550101.voise"
    assert "unknown key" in str(err.value)


def test_bad_value_and_bad_number_fail_clearly() -> None:
    """A bad mode and a non-E.164 number are rejected with their paths."""
    with pytest.raises(ConfigError) as err:
        parse_config({"numbers": {"+18005550101": {"mode": "telepathy"}}})
    assert err.value.path == "numbers.+18005550101.mode"
    with pytest.raises(ConfigError) as err2:
        parse_config({"numbers": {"555-0101": {"mode": "relay-router"}}})
    assert "E.164" in str(err2.value)


def test_missing_and_invalid_yaml_files(tmp_path: Path) -> None:
    """A missing file and broken YAML raise ConfigError naming the file."""
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("numbers: [unclosed")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)


def test_overrides_merge_over_defaults() -> None:
    """Number-level agent and relay fields override defaults field by field."""
    config = parse_config(
        {
            "defaults": {
                "agent": {"voice": "Clive", "greeting": "Hi"},
                "relay": {"language": "de-DE"},
            },
            "numbers": {
                "+18005550102": {
                    "mode": "relay-router",
                    "agent": {"voice": "Dennis"},
                    "relay": {"hints": ["Acme"]},
                }
            },
        }
    )
    plan = config.plan_for("+18005550102", "CA1")
    assert plan is not None
    assert plan.agent.voice == "Dennis" and plan.agent.greeting == "Hi"
    assert plan.relay.language == "de-DE" and plan.relay.hints == ("Acme",)


def test_unknown_number_policy() -> None:
    """Unknown numbers are refused by default, or get the default agent when configured."""
    assert Config().plan_for("+15550000000", "CA1") is None
    config = parse_config({"unknown_numbers": {"policy": "default_agent", "mode": "relay-router"}})
    plan = config.plan_for("+15550000000", "CA1")
    assert plan is not None and plan.mode == "relay-router"


def test_experiment_assignment_is_deterministic_and_weighted() -> None:
    """Arms are chosen per CallSid, stably, in proportion to their weights."""
    config = parse_config(
        {
            "numbers": {
                "+18005550103": {
                    "experiment": {
                        "name": "ab1",
                        "arms": [
                            {
                                "name": "rt",
                                "mode": "realtime-passthrough",
                                "weight": 3,
                                "agent": {"voice": "Ashley"},
                            },
                            {"name": "relay", "mode": "relay-router", "weight": 1},
                        ],
                    }
                }
            }
        }
    )
    counts: Counter[str] = Counter()
    for i in range(4000):
        plan = config.plan_for("+18005550103", f"CA{i:032x}")
        assert plan is not None and plan.arm is not None
        assert plan == config.plan_for("+18005550103", f"CA{i:032x}")
        counts[plan.arm] += 1
        assert plan.agent.voice == ("Ashley" if plan.arm == "rt" else "Clive")
    assert 2850 < counts["rt"] < 3150


def test_experiment_validation() -> None:
    """Duplicate arm names and a number with both mode and experiment are rejected."""
    arms = [{"name": "a", "mode": "relay-router", "weight": 1}] * 2
    with pytest.raises(ConfigError, match="unique"):
        parse_config({"numbers": {"+18005550103": {"experiment": {"name": "x", "arms": arms}}}})
    with pytest.raises(ConfigError, match="exactly one"):
        parse_config(
            {
                "numbers": {
                    "+18005550103": {
                        "mode": "relay-router",
                        "experiment": {
                            "name": "x",
                            "arms": [
                                {"name": "a", "mode": "relay-router", "weight": 1},
                                {"name": "b", "mode": "relay-router", "weight": 1},
                            ],
                        },
                    }
                }
            }
        )
