"""Sample ratio mismatch: did the arms get calls in their configured weights?

A chi-square goodness-of-fit test of the calls per arm against the weights. A p-value under
`SRM_P` (0.001) means the assignment or the records are broken (an arm's calls not recorded,
a failover that moved calls, a config changed mid-experiment): the latency comparison is then
between groups that differ in more than their arm, and the report names no winner.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

SRM_P = 0.001


@dataclass(frozen=True, slots=True)
class SampleRatio:
    """The check of one number's experiment; `mismatch` is True when p < SRM_P."""

    number: str
    calls: dict[str, int]
    expected_share: dict[str, float]
    chi2: float
    p_value: float
    mismatch: bool
    note: str


def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for a chi-square variable with `df` degrees of freedom (closed form for
    integer df: the regularized upper incomplete gamma function of df/2)."""
    if x <= 0.0:
        return 1.0
    half = x / 2.0
    if df % 2 == 0:
        term, total = 1.0, 1.0
        for i in range(1, df // 2):
            term *= half / i
            total += term
        return min(1.0, math.exp(-half) * total)
    total = math.erfc(math.sqrt(half))
    term = math.sqrt(half) * math.exp(-half) * 2.0 / math.sqrt(math.pi)
    for i in range(1, (df + 1) // 2):
        total += term
        term *= half / (i + 0.5)
    return min(1.0, max(0.0, total))


def check_ratio(
    number: str, calls: Mapping[str, int], weights: Mapping[str, float] | None
) -> SampleRatio | None:
    """The check for `number`'s arms (`calls` per arm) against `weights` (equal when None);
    None with fewer than two arms known. An arm of the weights without calls counts 0 (its
    calls may not be recorded at all); arms recorded but absent from the weights are a
    mismatch in themselves (the config and the records disagree)."""
    if len(set(calls) | set(weights or {})) < 2:
        return None
    assumed = weights is None
    weights = weights if weights is not None else dict.fromkeys(calls, 1.0)
    unknown = sorted(set(calls) - set(weights))
    if unknown:
        return SampleRatio(number, dict(calls), {}, 0.0, 0.0, True,
                           f"sample ratio mismatch: arms {', '.join(unknown)} are in the records "
                           "but not in the config's experiment")  # fmt: skip
    total_weight = sum(weights.values())
    share = {arm: weights[arm] / total_weight for arm in weights}
    n = sum(calls.values())
    chi2 = sum((calls.get(arm, 0) - n * p) ** 2 / (n * p) for arm, p in share.items() if p > 0)
    p_value = chi2_sf(chi2, len(share) - 1)
    mismatch = p_value < SRM_P
    split = ", ".join(f"{arm} {calls.get(arm, 0)} ({share[arm]:.0%} expected)" for arm in share)
    basis = "equal weights assumed (no config)" if assumed else "the config's weights"
    note = (f"sample ratio mismatch: calls per arm {split}, chi-square p = {p_value:.2g} < "
            f"{SRM_P} against {basis}: the assignment or the records are broken, no winner "
            "is named" if mismatch else
            f"calls per arm match {basis} (chi-square p = {p_value:.2g})")  # fmt: skip
    return SampleRatio(number, dict(calls), share, round(chi2, 3), p_value, mismatch, note)
