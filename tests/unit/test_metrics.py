"""Prometheus metrics fed by the MetricsSink, read back with prometheus_client's parser."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from voiceagent.config import parse_config
from voiceagent.metrics import FanOutSink, Metrics, MetricsSink
from voiceagent.session.call import CallSession, EndReason
from voiceagent.session.latency import TurnTiming


def _samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    return _samples(metrics).get((name, frozenset(labels.items())), 0.0)


def _call(**fields: Any) -> CallSession:
    base = {"call_sid": "CA1", "number": "+18005550103", "mode": "realtime-passthrough"}
    return CallSession(started=0.0, **(base | fields))


def _turn(call: CallSession, start: float, kind: str = "turn") -> TurnTiming:
    turn = call.latency.start_turn(start, kind)  # type: ignore[arg-type]
    call.latency.upstream_byte(start + 0.4)
    call.latency.audio_out(start + 0.45)
    call.latency.heard(start + 0.6)
    return turn


CALL = {"number": "+18005550103", "arm": "A", "mode": "realtime-passthrough"}
CONFIG = parse_config({
    "numbers": {
        "+18005550103": {"experiment": {"name": "ab", "arms": [
            {"name": "A", "mode": "realtime-passthrough", "weight": 1},
            {"name": "B", "mode": "relay-router", "weight": 1},
        ]}},
    }
})  # fmt: skip


def _metrics(**kw: Any) -> Metrics:
    """Metrics whose labels know CONFIG's number and arms."""
    return Metrics(config=lambda: CONFIG, **kw)


def test_turn_latencies_land_in_their_histograms() -> None:
    """Each figure of a turn is observed in seconds, labelled by number, arm and mode."""
    metrics = _metrics()
    sink = MetricsSink(metrics)
    call = _call(arm="A")
    sink.call_started(call)
    sink.turn_finished(call, _turn(call, 0.0, "greeting"))
    sink.turn_finished(call, _turn(call, 5.0))
    sink.turn_finished(call, _turn(call, 9.0))
    assert _value(metrics, "voiceagent_response_latency_seconds_count", **CALL) == 2
    assert _value(metrics, "voiceagent_response_latency_seconds_sum", **CALL) == pytest.approx(0.9)
    assert _value(metrics, "voiceagent_greeting_latency_seconds_count", **CALL) == 1
    assert _value(metrics, "voiceagent_upstream_ttfb_latency_seconds_bucket", **CALL, le="0.4") == 3
    assert _value(metrics, "voiceagent_heard_latency_seconds_count", **CALL) == 3
    assert _value(metrics, "voiceagent_fetch_latency_seconds_count", **CALL) == 0
    assert _value(metrics, "voiceagent_turns_total", **CALL, kind="turn") == 2
    assert _value(metrics, "voiceagent_turns_total", **CALL, kind="greeting") == 1


def test_call_end_counts_outcome_barge_ins_and_upstream_failure_once() -> None:
    """A call's end counts its outcome and barge-ins; its fatal failure is not counted twice."""
    metrics = _metrics()
    sink = MetricsSink(metrics)
    call = _call(arm="A")
    turn = _turn(call, 0.0)
    turn.failed = "dropped"
    sink.turn_finished(call, turn)
    call.counters.barge_ins = 3
    call.upstream_failure = "dropped"
    call.end(EndReason.UPSTREAM_FAILED, now=10.0)
    sink.call_ended(call)
    other = _call(call_sid="CA2", arm="A", upstream_failure="capacity")
    other.end(EndReason.UPSTREAM_FAILED, now=1.0)
    sink.call_ended(other)
    assert _value(metrics, "voiceagent_calls_total", **CALL, outcome="upstream_failed") == 2
    assert _value(metrics, "voiceagent_barge_ins_total", **CALL) == 3
    mode = {"mode": "realtime-passthrough"}
    assert _value(metrics, "voiceagent_upstream_errors_total", **mode, kind="dropped") == 1
    assert _value(metrics, "voiceagent_upstream_errors_total", **mode, kind="capacity") == 1


def test_failover_leg_counts_a_failover() -> None:
    """A call started with failover_from counts one failover from that mode to the new one."""
    metrics = _metrics()
    MetricsSink(metrics).call_started(
        _call(mode="relay-router", failover_from="realtime-passthrough")
    )
    labels = {"number": "+18005550103", "from_mode": "realtime-passthrough",
              "to_mode": "relay-router"}  # fmt: skip
    assert _value(metrics, "voiceagent_failovers_total", **labels) == 1


def test_active_calls_gauge_is_read_at_scrape_time() -> None:
    """The active-calls gauge asks the call registry for each mode when scraped."""
    active = {"realtime-passthrough": 2, "relay-router": 0}
    metrics = Metrics(active_calls=lambda mode: active[mode])
    assert _value(metrics, "voiceagent_active_calls", mode="realtime-passthrough") == 2
    active["relay-router"] = 5
    assert _value(metrics, "voiceagent_active_calls", mode="relay-router") == 5


def test_two_apps_have_separate_registries() -> None:
    """Metrics of one app never show in another's (no global registry)."""
    first, second = _metrics(), _metrics()
    call = _call()
    MetricsSink(first).turn_finished(call, _turn(call, 0.0))
    assert _value(first, "voiceagent_turns_total", **CALL | {"arm": ""}, kind="turn") == 1
    assert _value(second, "voiceagent_turns_total", **CALL | {"arm": ""}, kind="turn") == 0


class _Broken:
    def call_started(self, call: CallSession) -> None:
        raise RuntimeError("bug in a sink")

    def turn_finished(self, call: CallSession, turn: TurnTiming) -> None:
        raise RuntimeError("bug in a sink")

    def call_ended(self, call: CallSession) -> None:
        raise RuntimeError("bug in a sink")


def test_fan_out_reaches_every_sink_even_after_one_fails() -> None:
    """A sink that raises is skipped; the next sink still gets the milestone."""
    metrics = _metrics()
    sink = FanOutSink([_Broken(), MetricsSink(metrics)])
    call = _call()
    sink.call_started(call)
    sink.turn_finished(call, _turn(call, 0.0))
    call.end(EndReason.CALLER_HANGUP, now=1.0)
    sink.call_ended(call)
    labels = CALL | {"arm": ""}
    assert _value(metrics, "voiceagent_turns_total", **labels, kind="turn") == 1
    assert _value(metrics, "voiceagent_calls_total", **labels, outcome="caller_hangup") == 1


def test_unconfigured_numbers_arms_and_modes_share_one_other_label() -> None:
    """Numbers and arms the config does not name are all counted under the one value `other`."""
    metrics = _metrics()
    sink = MetricsSink(metrics)
    for i in range(50):
        call = _call(call_sid=f"CA{i}", number=f"+1555{i:07d}" + "9" * 40, arm=f"x{i}")
        call.end(EndReason.CALLER_HANGUP, now=1.0)
        sink.call_ended(call)
    stray = _call(arm="Z", mode="no-such-mode")
    stray.end(EndReason.CALLER_HANGUP, now=1.0)
    sink.call_ended(stray)
    other = {"number": "other", "arm": "other", "mode": "realtime-passthrough"}
    assert _value(metrics, "voiceagent_calls_total", **other, outcome="caller_hangup") == 50
    stray_labels = {"number": "+18005550103", "arm": "other", "mode": "other"}
    assert _value(metrics, "voiceagent_calls_total", **stray_labels, outcome="caller_hangup") == 1
    assert "+1555" not in metrics.exposition().decode()
    assert "other" in str(Metrics().labels.call(_call()))


def test_refusals_are_counted_by_reason_from_zero() -> None:
    """Every refusal reason is exposed from 0 and counts its refusals."""
    metrics = _metrics()
    assert _value(metrics, "voiceagent_calls_refused_total", reason="overload") == 0
    metrics.refuse("overload")
    metrics.refuse("draining")
    metrics.refuse("overload")
    assert _value(metrics, "voiceagent_calls_refused_total", reason="overload") == 2
    assert _value(metrics, "voiceagent_calls_refused_total", reason="draining") == 1
    assert ("voiceagent_calls_refused_total", frozenset({("reason", "unknown_number")})) in (
        _samples(metrics)
    )
