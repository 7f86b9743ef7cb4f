"""Report statistics: per number and arm, calls, turns and latency percentiles, and which arm
is faster with a bootstrap confidence interval. Pure functions over rows; no I/O here.

Arms are compared on the median of each latency, the difference `B - A` with a 95% interval
from a bootstrap that resamples whole calls (turns of one call are not independent). A winner
is named only with enough data (`min_turns` turns and `min_calls` calls per arm) and an
interval that excludes 0; otherwise the report says so plainly, and roughly how many more calls
per arm would be needed (`more_calls`): an interval's width shrinks as 1/sqrt(calls), so the
observed interval scaled to the size where it would exclude 0, if the difference holds.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
import numpy.typing as npt

from voiceagent.report.outbound import OutboundStats
from voiceagent.store.records.reading import CallRow, TurnRow

# Report figure → (turn kinds it is computed over, TurnTiming figure).
METRICS: dict[str, tuple[frozenset[str], str]] = {
    "response_ms": (frozenset({"turn"}), "response_ms"),
    "greeting_ms": (frozenset({"greeting"}), "response_ms"),
    "upstream_ttfb_ms": (frozenset({"turn"}), "upstream_ttfb_ms"),
    "overhead_ms": (frozenset({"turn"}), "overhead_ms"),
    "fetch_ms": (frozenset({"turn"}), "fetch_ms"),
    "heard_ms": (frozenset({"turn"}), "heard_ms"),
    "barge_in_ms": (frozenset({"greeting", "turn"}), "barge_in_ms"),
    "tool_ms": (frozenset({"turn"}), "tool_ms"),  # time in tools, apart from the model's
}
COMPARED = ("response_ms", "greeting_ms")
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Quantiles:
    n: int
    p50: float | None
    p90: float | None
    p99: float | None


@dataclass(frozen=True, slots=True)
class ArmStats:
    """One arm of one number (for a number without experiment: its mode)."""

    number: str
    arm: str
    mode: str
    calls: int
    turns: int
    failovers: int
    latency: dict[str, Quantiles]


@dataclass(frozen=True, slots=True)
class Comparison:
    """`arm_b` minus `arm_a` on the median of `metric`; `winner` is None unless clear."""

    number: str
    metric: str
    arm_a: str
    arm_b: str
    n_a: int
    n_b: int
    median_a: float | None
    median_b: float | None
    diff_ms: float | None
    ci_low: float | None
    ci_high: float | None
    winner: str | None
    verdict: str
    more_calls: int | None = None  # more calls per arm, roughly, for a verdict


@dataclass(frozen=True, slots=True)
class Report:
    arms: list[ArmStats]
    comparisons: list[Comparison]
    since: datetime | None = None
    calls: int = 0
    turns: int = 0
    settings: dict[str, int] = field(default_factory=dict)
    outbound: list[OutboundStats] = field(default_factory=list)


def quantiles(values: Sequence[float]) -> Quantiles:
    if not values:
        return Quantiles(0, None, None, None)
    p50, p90, p99 = (round(float(v), 1) for v in np.percentile(values, [50, 90, 99]))
    return Quantiles(len(values), p50, p90, p99)


def _weighted_medians(values: Floats, weights: npt.NDArray[np.int64]) -> Floats:
    """Median of `values` (sorted) repeated `weights[i, j]` times, for each row i."""
    cum = np.cumsum(weights, axis=1)
    half = cum[:, -1:] / 2.0
    low = values[(cum >= half).argmax(axis=1)]
    high = values[(cum > half).argmax(axis=1)]
    medians: Floats = (low + high) / 2.0
    return medians


def bootstrap_medians(
    values: Sequence[float], clusters: Sequence[str], rng: np.random.Generator, resamples: int
) -> Floats:
    """Medians of `resamples` bootstrap samples that draw whole clusters (calls) with
    replacement: a cluster drawn k times counts each of its values k times."""
    order = np.argsort(np.asarray(values, dtype=np.float64), kind="stable")
    sorted_values = np.asarray(values, dtype=np.float64)[order]
    names, index = np.unique(np.asarray(clusters, dtype=object)[order], return_inverse=True)
    k = len(names)
    out = np.empty(resamples, dtype=np.float64)
    chunk = max(1, 2_000_000 // max(len(values), 1))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        counts = rng.multinomial(k, np.full(k, 1.0 / k), size=size)
        out[start : start + size] = _weighted_medians(sorted_values, counts[:, index])
    return out


def compare(
    number: str,
    metric: str,
    a: tuple[str, list[float], list[str]],
    b: tuple[str, list[float], list[str]],
    *,
    rng: np.random.Generator,
    resamples: int = 2000,
    min_turns: int = 20,
    min_calls: int = 5,
) -> Comparison:
    """Compare two arms' `(name, values, call_sids)` on the median; B - A with a 95% CI."""
    (name_a, va, ca), (name_b, vb, cb) = a, b
    med_a = float(np.median(va)) if va else None
    med_b = float(np.median(vb)) if vb else None
    base = Comparison(number, metric, name_a, name_b, len(va), len(vb), med_a, med_b,
                      None, None, None, None, "")  # fmt: skip
    for name, values, sids in (a, b):
        calls = len(set(sids))
        if len(values) < min_turns or calls < min_calls:
            missing = _to_minimum(len(values), calls, min_turns, min_calls)
            return replace(base, more_calls=missing, verdict=f"not enough data to name a winner: "
                         f"arm {name} has {len(values)} turns in {calls} calls (need {min_turns} "
                         f"turns and {min_calls} calls per arm: about {missing} more "
                         "calls)")  # fmt: skip
    assert med_a is not None and med_b is not None
    diffs = bootstrap_medians(vb, cb, rng, resamples) - bootstrap_medians(va, ca, rng, resamples)
    low, high = (round(float(x), 1) for x in np.percentile(diffs, [2.5, 97.5]))
    diff = round(med_b - med_a, 1)
    ci = f"{name_b} - {name_a} = {diff:+.0f} ms, 95% CI [{low:+.0f}, {high:+.0f}] ms"
    if low <= 0.0 <= high:
        more = more_calls_needed(diff, low, high, (len(set(ca)), len(set(cb))))
        wait = ("; the medians are equal: more calls will not name a winner" if more is None
                else f"; about {more} more calls per arm for an interval excluding 0, if the "
                     "difference holds")  # fmt: skip
        return replace(base, diff_ms=diff, ci_low=low, ci_high=high, more_calls=more,
                     verdict=f"no clear winner: {ci} includes 0{wait}")  # fmt: skip
    winner = name_b if diff < 0 else name_a
    return replace(base, diff_ms=diff, ci_low=low, ci_high=high, winner=winner,
                 verdict=f"{winner} is faster: {ci}")  # fmt: skip


def _to_minimum(turns: int, calls: int, min_turns: int, min_calls: int) -> int:
    """Calls an arm still needs to reach the minimum (at its turns per call so far)."""
    per_call = turns / calls if calls and turns else 1.0
    return max(min_calls - calls, math.ceil(max(min_turns - turns, 0) / per_call), 1)


def more_calls_needed(diff: float, low: float, high: float, calls: tuple[int, int]) -> int | None:
    """Roughly how many more calls per arm would make the 95% interval exclude 0 if the
    observed difference held: widths shrink as 1/sqrt(n), so each arm needs k times its
    calls, k = (distance from the difference to the interval's bound nearer 0 / difference)².
    None when the difference is 0 (no sample size separates equal medians)."""
    if diff == 0:
        return None
    reach = (diff - low) if diff > 0 else (high - diff)
    k = (reach / abs(diff)) ** 2
    return max(max(math.ceil(n * k) - n for n in calls), 1)


def metric_values(turns: Sequence[TurnRow], metric: str) -> tuple[list[float], list[str]]:
    """The values of `metric` in `turns`, with the call of each."""
    kinds, figure = METRICS[metric]
    values, sids = [], []
    for turn in turns:
        value = turn.figures.get(figure)
        if turn.kind in kinds and value is not None:
            values.append(float(value))
            sids.append(turn.call_sid)
    return values, sids


def build_report(
    calls: Sequence[CallRow],
    turns: Sequence[TurnRow],
    *,
    since: datetime | None = None,
    seed: int = 0,
    resamples: int = 2000,
    min_turns: int = 20,
    min_calls: int = 5,
) -> Report:
    """Per (number, arm) statistics and pairwise arm comparisons of each number."""
    groups: dict[tuple[str, str], list[CallRow]] = defaultdict(list)
    for call in calls:
        groups[(call.number, call.arm or call.mode)].append(call)
    by_call: dict[str, list[TurnRow]] = defaultdict(list)
    for turn in turns:
        by_call[turn.call_sid].append(turn)
    arms, arm_turns = [], {}
    for (number, arm), members in sorted(groups.items()):
        mine = arm_turns[(number, arm)] = [t for c in members for t in by_call[c.call_sid]]
        arms.append(ArmStats(
            number=number, arm=arm,
            mode=",".join(sorted({c.mode for c in members})),
            calls=len(members),
            turns=sum(1 for t in mine if t.kind == "turn"),
            failovers=sum(1 for c in members if c.failover_from),
            latency={m: quantiles(metric_values(mine, m)[0]) for m in METRICS},
        ))  # fmt: skip
    rng = np.random.default_rng(seed)
    comparisons = []
    for number, same_number in itertools.groupby(arms, key=lambda s: s.number):
        for first, second in itertools.combinations([s.arm for s in same_number], 2):
            for metric in COMPARED:
                a = (first, *metric_values(arm_turns[(number, first)], metric))
                b = (second, *metric_values(arm_turns[(number, second)], metric))
                comparisons.append(compare(number, metric, a, b, rng=rng, resamples=resamples,
                                           min_turns=min_turns, min_calls=min_calls))  # fmt: skip
    settings = {"resamples": resamples, "min_turns": min_turns, "min_calls": min_calls,
                "seed": seed}  # fmt: skip
    return Report(arms, comparisons, since, len(calls), sum(s.turns for s in arms), settings)
