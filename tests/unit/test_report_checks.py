"""The A/B report's checks before a verdict: sample ratio mismatch and guardrails."""

from __future__ import annotations

import numpy as np
import pytest

from voiceagent.report import build_report, render
from voiceagent.report.srm import check_ratio, chi2_sf
from voiceagent.store.records.reading import CallRow, TurnRow

NUMBER = "+18005550103"


def _rows(
    calls: dict[str, int], means: dict[str, float], failovers: dict[str, float] | None = None
) -> tuple[list[CallRow], list[TurnRow]]:
    """`calls[arm]` calls per arm, 3 turns each around `means[arm]`; a share `failovers[arm]`
    of an arm's calls failed over."""
    rng = np.random.default_rng(3)
    call_rows, turn_rows = [], []
    for arm, count in calls.items():
        for c in range(count):
            sid = f"CA{arm}{c:04d}"
            failed = c < round(count * (failovers or {}).get(arm, 0.0))
            call_rows.append(CallRow(sid, NUMBER, arm, "relay-router",
                                     failover_from="relay-router" if failed else None,
                                     end_reason="caller_hangup", ended_by="caller",
                                     duration_s=60.0, agent_turns=3))  # fmt: skip
            level = rng.normal(0, 40)
            turn_rows.append(TurnRow(sid, "greeting", {"response_ms": means[arm] + level}))
            turn_rows += [TurnRow(sid, "turn", {"response_ms": means[arm] + level + n})
                          for n in rng.normal(0, 30, 3)]  # fmt: skip
    return call_rows, turn_rows


@pytest.mark.parametrize(("x", "df", "p"), [(3.841, 1, 0.05), (10.828, 1, 0.001),
                                            (5.991, 2, 0.05), (7.815, 3, 0.05)])  # fmt: skip
def test_chi_square_tail_matches_the_tables(x: float, df: int, p: float) -> None:
    """The closed-form chi-square tail gives the textbook critical values' probabilities."""
    assert chi2_sf(x, df) == pytest.approx(p, rel=1e-3)


def test_skewed_calls_per_arm_are_a_mismatch_stated_above_the_verdict() -> None:
    """300 calls in A and 200 in B of a 50/50 experiment: mismatch (p < 0.001), stated before
    the arms and verdicts, and no winner named although B is clearly faster."""
    rows = _rows({"A": 300, "B": 200}, {"A": 700.0, "B": 500.0})
    report = build_report(*rows, weights={NUMBER: {"A": 1.0, "B": 1.0}})
    [ratio] = report.ratios
    assert ratio.mismatch and ratio.p_value < 0.001
    assert all(c.winner is None and c.state == "mismatch" for c in report.comparisons)
    table = render(report)
    assert table.index("sample ratio mismatch") < table.index("arm A")
    assert "response: no winner named (sample ratio mismatch" in table


def test_calls_in_their_configured_weights_are_no_mismatch() -> None:
    """300/200 calls with weights 3:2 match; the faster arm is named."""
    rows = _rows({"A": 300, "B": 200}, {"A": 700.0, "B": 500.0})
    report = build_report(*rows, weights={NUMBER: {"A": 3.0, "B": 2.0}})
    assert not report.ratios[0].mismatch
    assert {c.winner for c in report.comparisons if c.n_a} == {"B"}  # audible: no data
    assert check_ratio(NUMBER, {"A": 10, "C": 10}, {"A": 1.0, "B": 1.0}).mismatch  # type: ignore[union-attr]


def test_an_arm_with_no_calls_recorded_is_a_mismatch() -> None:
    """Weights name A and B, but only A's 40 calls are in the records: a mismatch, not a
    number without experiment."""
    report = build_report(*_rows({"A": 40}, {"A": 600.0}), weights={NUMBER: {"A": 1, "B": 1}})
    [ratio] = report.ratios
    assert ratio.mismatch and ratio.calls == {"A": 40}
    assert render(report).splitlines()[3].startswith("  !! sample ratio mismatch")


def test_a_faster_arm_worse_on_a_guardrail_is_not_named_the_winner() -> None:
    """B answers 60 ms faster but fails over on 40% of its calls (A: none): the verdict says
    "faster but worse on failovers" and names no winner."""
    rows = _rows({"A": 60, "B": 60}, {"A": 560.0, "B": 500.0}, failovers={"B": 0.4})
    report = build_report(*rows)
    response = next(c for c in report.comparisons if c.metric == "response_ms")
    assert response.winner is None and response.state == "worse"
    assert response.worse_on == ["failovers"]
    assert response.verdict.startswith("B is faster but worse on failovers")
    diff = next(d for d in report.guardrail_diffs if d.name == "failovers")
    assert diff.worse == "B" and diff.low is not None and diff.low > 0
    b = next(a for a in report.arms if a.arm == "B")
    failovers = next(g for g in b.guardrails if g.name == "failovers")
    assert failovers.mean == pytest.approx(0.4)
    assert failovers.low is not None and failovers.low < 0.4 < (failovers.high or 0)
    assert "guardrail: B is worse on failovers" in render(report)


def test_equal_guardrails_leave_the_winner_named() -> None:
    """Without a guardrail difference the faster arm is the winner."""
    report = build_report(*_rows({"A": 60, "B": 60}, {"A": 560.0, "B": 500.0}))
    assert {c.winner for c in report.comparisons if c.n_a} == {"B"}  # audible: no data
    assert all(d.worse is None for d in report.guardrail_diffs)
