"""Experiments over any setting (arm overrides of agent fields and mode knobs), the report's
per-arm settings, and its estimate of how many more calls a verdict needs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voiceagent.config import load_config, parse_config
from voiceagent.errors import ConfigError
from voiceagent.report.arms import arm_settings
from voiceagent.report.experiments import experiment_statuses
from voiceagent.report.sequential import Interval, half_width, more_calls
from voiceagent.report.stats import build_report
from voiceagent.store.records.reading import CallRow, TurnRow

NUMBER = "+18005550103"


def _config(*arms: dict[str, Any], **number: Any) -> dict[str, Any]:
    entry = {"experiment": {"name": "knobs", "arms": list(arms)}, **number}
    return {"defaults": {"agent": {"voice": "Clive"}}, "numbers": {NUMBER: entry}}


APPEND = _config(
    {"name": "a20", "mode": "realtime-passthrough", "weight": 1, "realtime": {"append_ms": 20}},
    {"name": "a40", "mode": "realtime-passthrough", "weight": 1},
    {"name": "dennis", "mode": "relay-router", "weight": 1,
     "agent": {"voice": "Dennis"}, "relay": {"clip_format": "pcm_wav"}},
    realtime={"append_ms": 40, "mark_ms": 100},
)  # fmt: skip


def _plans_by_arm(data: dict[str, Any]) -> dict[str, Any]:
    config = parse_config(data)
    plans = (config.plan_for(NUMBER, f"CA{i:032x}") for i in range(60))
    return {p.arm: p for p in plans if p is not None}


def test_arm_overrides_knobs_of_its_mode_on_top_of_the_numbers_settings() -> None:
    """An arm's realtime/relay knobs and agent fields override the number's, the rest is kept."""
    plans = _plans_by_arm(APPEND)
    assert plans["a20"].realtime.append_ms == 20 and plans["a20"].realtime.mark_ms == 100
    assert plans["a40"].realtime.append_ms == 40
    assert plans["dennis"].relay.clip_format == "pcm_wav"
    assert plans["dennis"].agent.voice == "Dennis"
    assert plans["a20"].agent.voice == "Clive" and plans["a20"].relay.clip_format == "ulaw_wav"


@pytest.mark.parametrize(
    ("arm", "path", "message"),
    [
        ({"relay": {"language": "fr-FR"}}, "arms.0.relay", "applies to relay-router arms only"),
        ({"realtime": {"apend_ms": 20}}, "arms.0.realtime.apend_ms", "unknown key"),
        ({"agent": {"vioce": "Dennis"}}, "arms.0.agent.vioce", "unknown key"),
        ({"realtime": {"append_ms": 5}}, "arms.0.realtime.append_ms", "greater than or equal"),
    ],
)
def test_bad_arm_overrides_fail_at_start_with_their_yaml_path(
    arm: dict[str, Any], path: str, message: str
) -> None:
    """Unknown keys, bad values and knobs of the other mode are ConfigErrors naming the path."""
    data = copy.deepcopy(APPEND)
    data["numbers"][NUMBER]["experiment"]["arms"][0].update(arm)
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert err.value.path == f"numbers.{NUMBER}.experiment.{path}"
    assert message in str(err.value)


def test_report_names_what_each_arm_changes() -> None:
    """Each arm lists its mode and every setting it changes, with the number's value."""
    settings = arm_settings(parse_config(APPEND), NUMBER)
    assert settings["a20"] == ["mode: realtime-passthrough", "realtime.append_ms: 20 (number: 40)"]
    assert settings["a40"] == ["mode: realtime-passthrough"]
    assert settings["dennis"] == [
        "mode: relay-router",
        "agent.voice: Dennis (number: Clive)",
        "relay.clip_format: pcm_wav (number: ulaw_wav)",
    ]
    assert arm_settings(parse_config(APPEND), "+18005550199") == {}


def _rows(calls: int, diff: float) -> tuple[list[CallRow], list[TurnRow]]:
    """Two arms exactly `diff` ms apart (same noise), with a call-to-call spread that hides the
    difference at small sizes; more calls are fresh draws of the same spread."""
    rng = np.random.default_rng(7)
    noises = [rng.normal(0, 150) + rng.normal(0, 60, 4) for _ in range(calls)]
    call_rows, turn_rows = [], []
    for arm, shift in (("A", 0.0), ("B", diff)):
        for c, noise in enumerate(noises):
            sid = f"CA{arm}{c:04d}"
            call_rows.append(CallRow(sid, NUMBER, arm, "relay-router"))
            turn_rows += [TurnRow(sid, "turn", {"response_ms": 800 + shift + n}) for n in noise]
    return call_rows, turn_rows


def _response(rows: tuple[list[CallRow], list[TurnRow]]) -> Any:
    return next(c for c in build_report(*rows).comparisons if c.metric == "response_ms")


@pytest.mark.parametrize("diff", [20.0, 40.0])
def test_without_a_winner_the_report_says_how_many_more_calls_it_needs(diff: float) -> None:
    """No clear winner: the verdict estimates more calls per arm, and that many calls (with 50%
    to spare) of the same spread and difference give an interval that excludes 0."""
    small = _response(_rows(calls=8, diff=diff))
    assert small.winner is None and small.state == "collecting"
    assert small.more_calls is not None and small.more_calls > 0
    assert f"about {small.more_calls} more calls per arm" in small.verdict
    enough = (8 + small.more_calls) * 3 // 2
    assert _response(_rows(calls=enough, diff=diff)).winner == "A"


def test_more_calls_is_where_the_always_valid_interval_reaches_the_difference() -> None:
    """The calls needed make the confidence sequence's half-width just below the difference,
    with both arms grown in proportion; a difference of 0 needs no number of calls."""
    interval = Interval(30.0, -40.0, 100.0, (10, 20), (150.0**2, 150.0**2))
    more = more_calls(interval)
    assert more is not None
    k = (20 + more) / 20
    assert half_width(interval.variances, (10 * k, 20 * k)) < 30.0
    k = (20 + more - 2) / 20
    assert half_width(interval.variances, (10 * k, 20 * k)) >= 30.0
    assert more_calls(Interval(0.0, -10.0, 10.0, (10, 10), (1.0, 1.0))) is None


def test_below_the_minimum_the_report_counts_the_calls_missing() -> None:
    """An arm below the minimum data gets `more_calls` to reach it."""
    response = _response(_rows(calls=3, diff=40.0))
    assert response.winner is None and response.more_calls == 2
    assert "about 2 more calls" in response.verdict


def test_sample_config_ships_an_experiment_over_first_clip_ms() -> None:
    """The sample config's experiment splits a relay number between whole-sentence clips and
    `first_clip_ms: 300`, and the report names that as the one thing the arm changes."""
    config = load_config(Path(__file__).parents[2] / "config" / "voiceagent.yaml")
    [number] = [n for n, e in config.numbers.items() if e.experiment is not None]
    settings = arm_settings(config, number)
    assert settings["whole-sentence"] == ["mode: relay-router"]
    assert settings["first-clip-300"] == [
        "mode: relay-router",
        "relay.first_clip_ms: 300 (number: None)",
    ]


def _two_latencies(calls: int) -> tuple[list[CallRow], list[TurnRow]]:
    """A answers (`play`) 50 ms sooner; B's audio is audible (clip fetched) 300 ms sooner."""
    rng = np.random.default_rng(11)
    call_rows, turn_rows = [], []
    for arm, play, fetched in (("A", 500.0, 900.0), ("B", 550.0, 600.0)):
        for c in range(calls):
            sid = f"CA{arm}{c:04d}"
            call_rows.append(CallRow(sid, NUMBER, arm, "relay-router"))
            noise = rng.normal(0, 20)
            turn_rows += [TurnRow(sid, "turn", {"response_ms": play + noise,
                                                "fetch_ms": fetched + noise})] * 2  # fmt: skip
    return call_rows, turn_rows


def test_arms_faster_on_different_latencies_are_mixed_not_a_winner() -> None:
    """A sends its first `play` sooner but B is heard sooner: the experiment is "mixed", naming
    each arm with the latency it wins, and needs no more calls."""
    config = parse_config(_config({"name": "A", "mode": "relay-router", "weight": 1},
                                  {"name": "B", "mode": "relay-router", "weight": 1,
                                   "relay": {"first_clip_ms": 300}}))  # fmt: skip
    report = build_report(*_two_latencies(30), weights={NUMBER: {"A": 1.0, "B": 1.0}})
    [status] = experiment_statuses(report, config)
    assert status.state == "mixed" and status.calls_needed is None
    assert status.headline == "mixed: each arm is faster on something (A on response; B on audible)"
    assert status.arms[1]["changes"] == [
        "mode: relay-router",
        "relay.first_clip_ms: 300 (number: None)",
    ]
