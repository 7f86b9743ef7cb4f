"""Experiments over any setting (arm overrides of agent fields and mode knobs), the report's
per-arm settings, and its estimate of how many more calls a verdict needs."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from voiceagent.config import parse_config
from voiceagent.errors import ConfigError
from voiceagent.report.arms import arm_settings
from voiceagent.report.stats import build_report, more_calls_needed
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
    """Two arms exactly `diff` ms apart (same noise), with a spread that hides the difference
    at small sizes; more calls are fresh draws of the same spread."""
    rng = np.random.default_rng(7)
    noises = [rng.normal(0, 150, 4) for _ in range(calls)]
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
    assert small.winner is None and small.more_calls is not None and small.more_calls > 0
    assert f"about {small.more_calls} more calls per arm" in small.verdict
    enough = (8 + small.more_calls) * 3 // 2
    assert _response(_rows(calls=enough, diff=diff)).winner == "A"


def test_more_calls_scales_the_interval_as_one_over_root_n() -> None:
    """CI [-10, +50] around +20 reaches 0 at 1.5x the width from the diff: 2.25x the calls."""
    assert more_calls_needed(20.0, -10.0, 50.0, (10, 10)) == 13
    assert more_calls_needed(-20.0, -50.0, 10.0, (10, 20)) == 25
    assert more_calls_needed(0.0, -10.0, 10.0, (10, 10)) is None


def test_below_the_minimum_the_report_counts_the_calls_missing() -> None:
    """An arm below the minimum data gets `more_calls` to reach it."""
    response = _response(_rows(calls=3, diff=40.0))
    assert response.winner is None and response.more_calls == 2
    assert "about 2 more calls" in response.verdict
