"""Report statistics: per number and arm, calls, turns, latency percentiles and guardrails,
and which arm is faster. Pure functions over rows; no I/O here.

Arms are compared on per-call values (a call's median latency: one value per call, so one long
call does not dominate and values are independent) with an always-valid confidence sequence
(`sequential.py`): the verdict may be read at every look. Before any verdict the calls per arm
are checked against the configured weights (`srm.py`): a mismatch names no winner. A latency
winner significantly worse on a guardrail (`guardrails.py`) is "faster but worse on X".

A comparison's `state`: `collecting` (not enough data, or the interval includes 0 and is wider
than ±`equivalence_ms`), `winner`, `no difference` (the interval lies within
±`equivalence_ms`), `worse` (faster but worse on a guardrail), `mismatch` (sample ratio).
`more_calls`: roughly how many more calls per arm the interval needs to exclude 0 if the
difference holds, computed with the same always-valid boundary.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np

from voiceagent.report.guardrails import (
    Guardrail,
    GuardrailDiff,
    arm_guardrails,
    compare_guardrails,
    per_call_values,
)
from voiceagent.report.outbound import OutboundStats
from voiceagent.report.sequential import ALPHA, METHOD, difference, more_calls
from voiceagent.report.srm import SampleRatio, check_ratio
from voiceagent.store.records.reading import CallRow, TurnRow

# Report figure → (turn kinds it is computed over, TurnTiming figures: the first one present).
METRICS: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "response_ms": (frozenset({"turn"}), ("response_ms",)),
    "greeting_ms": (frozenset({"greeting"}), ("response_ms",)),
    "upstream_ttfb_ms": (frozenset({"turn"}), ("upstream_ttfb_ms",)),
    "overhead_ms": (frozenset({"turn"}), ("overhead_ms",)),
    "fetch_ms": (frozenset({"turn"}), ("fetch_ms",)),
    "heard_ms": (frozenset({"turn"}), ("heard_ms",)),
    # turn end → the caller can hear the first audio: realtime, the first mark's echo (played);
    # relay, Twilio has fetched the first clip whole (it plays a clip once fetched)
    "audible_ms": (frozenset({"turn"}), ("heard_ms", "fetch_ms")),
    "barge_in_ms": (frozenset({"greeting", "turn"}), ("barge_in_ms",)),
    "tool_ms": (frozenset({"turn"}), ("tool_ms",)),  # time in tools, apart from the model's
}
COMPARED = ("response_ms", "audible_ms", "greeting_ms")


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
    guardrails: list[Guardrail] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Comparison:
    """`arm_b` minus `arm_a` on the mean of per-call `metric` values; `winner` is None unless
    clear. `n_a`/`n_b` count calls."""

    number: str
    metric: str
    arm_a: str
    arm_b: str
    n_a: int
    n_b: int
    mean_a: float | None
    mean_b: float | None
    diff_ms: float | None
    ci_low: float | None
    ci_high: float | None
    winner: str | None
    verdict: str
    more_calls: int | None = None  # more calls per arm, roughly, for a verdict
    state: str = "collecting"
    worse_on: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Report:
    arms: list[ArmStats]
    comparisons: list[Comparison]
    since: datetime | None = None
    calls: int = 0
    turns: int = 0
    settings: dict[str, int] = field(default_factory=dict)
    method: str = METHOD
    ratios: list[SampleRatio] = field(default_factory=list)
    guardrail_diffs: list[GuardrailDiff] = field(default_factory=list)
    outbound: list[OutboundStats] = field(default_factory=list)


def quantiles(values: Sequence[float]) -> Quantiles:
    if not values:
        return Quantiles(0, None, None, None)
    p50, p90, p99 = (round(float(v), 1) for v in np.percentile(values, [50, 90, 99]))
    return Quantiles(len(values), p50, p90, p99)


def per_call(values: Sequence[float], sids: Sequence[str]) -> list[float]:
    """One value per call: the median of its values (calls in first-seen order)."""
    by_call: dict[str, list[float]] = defaultdict(list)
    for value, sid in zip(values, sids, strict=True):
        by_call[sid].append(value)
    return [float(np.median(v)) for v in by_call.values()]


def compare(
    number: str,
    metric: str,
    a: tuple[str, list[float]],
    b: tuple[str, list[float]],
    *,
    min_calls: int = 5,
    equivalence_ms: float = 20.0,
    alpha: float = ALPHA,
) -> Comparison:
    """Compare two arms' `(name, per-call values)`: B - A on the mean, always-valid at
    1 - `alpha` (`comparison_alpha`: the experiment's 5% shared by its comparisons)."""
    (name_a, va), (name_b, vb) = a, b
    mean_a = round(float(np.mean(va)), 1) if va else None
    mean_b = round(float(np.mean(vb)), 1) if vb else None
    base = Comparison(number, metric, name_a, name_b, len(va), len(vb), mean_a, mean_b,
                      None, None, None, None, "")  # fmt: skip
    need = max(min_calls, 2)
    for name, values in (a, b):
        if len(values) < need:
            missing = need - len(values)
            return replace(base, more_calls=missing, verdict=f"not enough data to name a winner: "
                           f"arm {name} has {len(values)} calls (need {need} calls per arm: "
                           f"about {missing} more calls)")  # fmt: skip
    iv = difference(va, vb, alpha=alpha)
    diff, low, high = round(iv.diff, 1), round(iv.low, 1), round(iv.high, 1)
    found = replace(base, diff_ms=diff, ci_low=low, ci_high=high)
    ci = (f"{name_b} - {name_a} = {diff:+.0f} ms, always-valid {1 - alpha:.1%} CI [{low:+.0f}, "
          f"{high:+.0f}] ms over {len(va)} + {len(vb)} calls")  # fmt: skip
    if iv.excludes_zero():
        winner = name_b if iv.diff < 0 else name_a
        return replace(found, winner=winner, state="winner", verdict=f"{winner} is faster: {ci}")
    if -equivalence_ms <= iv.low and iv.high <= equivalence_ms:
        return replace(found, state="no difference", verdict=f"no difference: {ci} lies within "
                       f"±{equivalence_ms:.0f} ms")  # fmt: skip
    more = more_calls(iv, alpha=alpha)
    wait = ("; the means are equal: more calls will not name a winner" if more is None
            else f"; about {more} more calls per arm for an interval excluding 0, if the "
                 "difference holds")  # fmt: skip
    return replace(found, more_calls=more, verdict=f"no clear winner yet: {ci} includes 0{wait}")


def comparison_alpha(arms: int) -> float:
    """Each comparison's error: the experiment's 5% shared (Bonferroni) by its pairs of arms
    and the latencies compared, so a false winner on any of them is at most 5% likely."""
    return ALPHA / (len(COMPARED) * max(arms * (arms - 1) // 2, 1))


def with_checks(
    comparison: Comparison, ratio: SampleRatio | None, diffs: Sequence[GuardrailDiff]
) -> Comparison:
    """The comparison once the sample ratio and the guardrails are taken into account."""
    if ratio is not None and ratio.mismatch:
        return replace(comparison, winner=None, state="mismatch",
                       verdict=f"no winner named (sample ratio mismatch, see above): "
                               f"{comparison.verdict}")  # fmt: skip
    winner = comparison.winner
    if winner is None:
        return comparison
    worse = [d.name for d in diffs if d.worse == winner]
    if not worse:
        return comparison
    return replace(comparison, winner=None, state="worse", worse_on=worse,
                   verdict=f"{winner} is faster but worse on {', '.join(worse)}: not named the "
                           f"winner; {comparison.verdict.split(': ', 1)[1]}")  # fmt: skip


def metric_values(turns: Sequence[TurnRow], metric: str) -> tuple[list[float], list[str]]:
    """The values of `metric` in `turns`, with the call of each."""
    kinds, figures = METRICS[metric]
    values, sids = [], []
    for turn in turns:
        value = next((v for f in figures if (v := turn.figures.get(f)) is not None), None)
        if turn.kind in kinds and value is not None:
            values.append(float(value))
            sids.append(turn.call_sid)
    return values, sids


def build_report(
    calls: Sequence[CallRow],
    turns: Sequence[TurnRow],
    *,
    since: datetime | None = None,
    weights: Mapping[str, Mapping[str, float]] | None = None,
    min_calls: int = 5,
    equivalence_ms: float = 20.0,
) -> Report:
    """Per (number, arm) statistics and guardrails, the sample ratio check of each number with
    an experiment (against `weights`: per number, per arm; equal weights when absent) and
    pairwise arm comparisons."""
    groups: dict[tuple[str, str], list[CallRow]] = defaultdict(list)
    for call in calls:
        groups[(call.number, call.arm or call.mode)].append(call)
    by_call: dict[str, list[TurnRow]] = defaultdict(list)
    for turn in turns:
        by_call[turn.call_sid].append(turn)
    arms, arm_turns, arm_guards = [], {}, {}
    for (number, arm), members in sorted(groups.items()):
        mine = arm_turns[(number, arm)] = [t for c in members for t in by_call[c.call_sid]]
        guards = arm_guards[(number, arm)] = per_call_values(members, mine)
        arms.append(ArmStats(
            number=number, arm=arm,
            mode=",".join(sorted({c.mode for c in members})),
            calls=len(members),
            turns=sum(1 for t in mine if t.kind == "turn"),
            failovers=sum(1 for c in members if c.failover_from),
            latency={m: quantiles(metric_values(mine, m)[0]) for m in METRICS},
            guardrails=arm_guardrails(guards),
        ))  # fmt: skip
    comparisons, ratios, all_diffs = [], [], []
    for number, group in itertools.groupby(arms, key=lambda s: s.number):
        same_number = list(group)
        ratio = None
        known = (weights or {}).get(number)
        if (len(same_number) > 1 or known) and all(c.arm for key, cs in groups.items()
                                                   if key[0] == number for c in cs):  # fmt: skip
            counts = {s.arm: s.calls for s in same_number}
            ratio = check_ratio(number, counts, known)
            if ratio is not None:
                ratios.append(ratio)
        alpha = comparison_alpha(len(same_number))
        for first, second in itertools.combinations([s.arm for s in same_number], 2):
            pair = ((first, arm_guards[(number, first)]), (second, arm_guards[(number, second)]))
            diffs = compare_guardrails(number, *pair, min_calls)
            all_diffs += diffs
            for metric in COMPARED:
                a = (first, per_call(*metric_values(arm_turns[(number, first)], metric)))
                b = (second, per_call(*metric_values(arm_turns[(number, second)], metric)))
                plain = compare(number, metric, a, b, min_calls=min_calls, alpha=alpha,
                                equivalence_ms=equivalence_ms)  # fmt: skip
                comparisons.append(with_checks(plain, ratio, diffs))
    settings = {"min_calls": min_calls, "equivalence_ms": int(equivalence_ms)}
    return Report(arms, comparisons, since, len(calls), sum(s.turns for s in arms), settings,
                  METHOD, ratios, all_diffs)  # fmt: skip


def calls_needed(comparisons: Sequence[Comparison]) -> int | None:
    """The most calls per arm any still-collecting comparison needs (None: none needs more)."""
    needs = [c.more_calls for c in comparisons if c.state == "collecting" and c.more_calls]
    return max(needs) if needs else None
