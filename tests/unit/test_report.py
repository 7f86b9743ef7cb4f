"""The A/B report's statistics and formats, on synthetic rows (no database)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from voiceagent.report import build_report, parse_since, render, rows_from_sessions
from voiceagent.session.call import CallSession, EndReason
from voiceagent.store.records.reading import CallRow, TurnRow

NUMBER = "+18005550103"


def _rows(
    arms: dict[str, tuple[str, float]], calls: int, turns: int, seed: int = 1
) -> tuple[list[CallRow], list[TurnRow]]:
    """`calls` calls per arm of `turns` turns; response ≈ mean + per-call + per-turn noise."""
    rng = np.random.default_rng(seed)
    call_rows, turn_rows = [], []
    for arm, (mode, mean) in arms.items():
        for c in range(calls):
            sid = f"CA{arm}{c:04d}"
            call_rows.append(CallRow(sid, NUMBER, arm, mode, failover_from=None))
            offset = rng.normal(0, 60)
            turn_rows.append(TurnRow(sid, "greeting", {"response_ms": mean + 300 + offset}))
            for _ in range(turns):
                response = mean + offset + rng.normal(0, 120)
                figures = {"response_ms": response, "upstream_ttfb_ms": response - 40,
                           "overhead_ms": 40.0, "heard_ms": None}  # fmt: skip
                turn_rows.append(TurnRow(sid, "turn", figures))
    return call_rows, turn_rows


ARMS = {"A": ("realtime-passthrough", 900.0), "B": ("relay-router", 700.0)}


def test_slower_arm_loses_with_an_interval_excluding_zero() -> None:
    """Arm A 200 ms slower: the report names B, with an always-valid interval below 0 around
    -200 ms."""
    report = build_report(*_rows(ARMS, calls=30, turns=6))
    [response] = [c for c in report.comparisons if c.metric == "response_ms"]
    assert response.winner == "B"
    assert response.ci_low is not None and response.ci_high is not None
    assert response.ci_low < -200 < response.ci_high < 0
    assert response.diff_ms == pytest.approx(-200, abs=60)
    assert "B is faster" in response.verdict


def test_report_is_reproducible_with_its_seed() -> None:
    """The same rows and seed give the same interval."""
    rows = _rows(ARMS, calls=30, turns=6)
    assert build_report(*rows).comparisons == build_report(*rows).comparisons


def test_per_arm_counts_and_percentiles() -> None:
    """Each arm shows its calls, turns, failovers and p50/p90/p99 of each latency."""
    calls, turns = _rows(ARMS, calls=10, turns=4)
    calls[0] = CallRow(calls[0].call_sid, NUMBER, "A", "realtime-passthrough",
                       failover_from="realtime-passthrough")  # fmt: skip
    report = build_report(calls, turns)
    a, b = report.arms
    assert (a.arm, a.calls, a.turns, a.failovers) == ("A", 10, 40, 1)
    assert (b.arm, b.mode, b.failovers) == ("B", "relay-router", 0)
    assert a.latency["response_ms"].n == 40 and a.latency["greeting_ms"].n == 10
    assert a.latency["heard_ms"].n == 0 and a.latency["heard_ms"].p50 is None
    q = a.latency["response_ms"]
    assert q.p50 is not None and q.p90 is not None and q.p99 is not None
    assert q.p50 < q.p90 < q.p99
    assert report.calls == 20 and report.turns == 80


def test_tiny_data_says_not_enough_data() -> None:
    """With fewer than 20 turns per arm the report names no winner and says why."""
    report = build_report(*_rows(ARMS, calls=3, turns=2))
    for comparison in report.comparisons:
        assert comparison.winner is None and comparison.ci_low is None
        assert comparison.verdict.startswith("not enough data")


def test_many_turns_in_few_calls_is_still_not_enough() -> None:
    """Turns of a handful of calls are not independent evidence: too few calls, no winner."""
    report = build_report(*_rows(ARMS, calls=2, turns=50))
    [response] = [c for c in report.comparisons if c.metric == "response_ms"]
    assert response.winner is None and "2 calls" in response.verdict


def test_equal_arms_have_no_clear_winner() -> None:
    """Arms drawn from the same distribution: the interval crosses 0 and no arm is named."""
    same = {"A": ("relay-router", 800.0), "B": ("relay-router", 800.0)}
    [response] = [c for c in build_report(*_rows(same, 30, 6)).comparisons
                  if c.metric == "response_ms"]  # fmt: skip
    assert response.winner is None and response.verdict.startswith("no clear winner")
    assert response.ci_low is not None and response.ci_high is not None
    assert response.ci_low < 0 < response.ci_high


def test_numbers_without_experiment_are_grouped_by_mode() -> None:
    """A plain number's calls form one group named by its mode, with nothing to compare."""
    calls = [CallRow("CA1", "+18005550101", None, "relay-router")]
    turns = [TurnRow("CA1", "turn", {"response_ms": 500.0})]
    report = build_report(calls, turns)
    assert [(a.number, a.arm) for a in report.arms] == [("+18005550101", "relay-router")]
    assert report.comparisons == []


def test_json_and_csv_formats() -> None:
    """JSON carries arms and comparisons; CSV has one row per number, arm and latency figure."""
    since = datetime(2026, 11, 1, tzinfo=UTC)
    report = build_report(*_rows(ARMS, calls=25, turns=4), since=since)
    data = json.loads(render(report, "json"))
    assert data["since"] == "2026-11-01T00:00:00+00:00"
    assert [a["arm"] for a in data["arms"]] == ["A", "B"]
    assert data["comparisons"][0]["winner"] == "B"
    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    assert len(rows) == 2 * len(report.arms[0].latency)
    first = next(r for r in rows if r["arm"] == "A" and r["metric"] == "response_ms")
    assert first["n"] == "100" and float(first["p50"]) > 800 and first["calls"] == "25"
    assert next(r for r in rows if r["metric"] == "heard_ms")["p50"] == ""
    table = render(report, "table")
    assert "arm A (realtime-passthrough): 25 calls, 100 turns" in table
    assert "response: B is faster" in table


def test_since_accepts_relative_and_iso_times() -> None:
    """--since takes 30m/1h/7d/2w ago or an ISO date, and rejects anything else."""
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert parse_since("1h", now) == now - timedelta(hours=1)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2026-11-20", now) == datetime(2026, 11, 20, tzinfo=UTC)
    assert parse_since("2026-11-20T08:00:00+02:00", now).hour == 8
    with pytest.raises(ValueError, match="--since"):
        parse_since("yesterday", now)


def test_rows_from_sessions_join_failover_legs() -> None:
    """Ended CallSessions become report rows; a failover leg joins its call's first arm."""
    first = CallSession("CA1", NUMBER, "realtime-passthrough", arm="A", started=0.0)
    first.end(EndReason.UPSTREAM_FAILED, now=1.0)
    second = CallSession("CA1", NUMBER, "relay-router", arm="A", started=2.0,
                         failover_from="realtime-passthrough")  # fmt: skip
    turn = second.latency.start_turn(3.0)
    second.latency.audio_out(3.5)
    second.end(EndReason.CALLER_HANGUP, now=9.0)
    calls, turns = rows_from_sessions([first, second])
    [call] = calls
    assert (call.arm, call.mode, call.failover_from, call.end_reason) == (
        "A",
        "realtime-passthrough",
        "realtime-passthrough",
        "caller_hangup",
    )
    assert [(t.mode, t.figures["response_ms"]) for t in turns] == [("relay-router", 500.0)]
    assert turn.index == 0
    [arm] = build_report(calls, turns).arms
    assert (arm.arm, arm.failovers, arm.turns) == ("A", 1, 1)
