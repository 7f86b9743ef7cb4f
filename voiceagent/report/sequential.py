"""Always-valid intervals: a confidence sequence on the difference between two arms' means.

Why: the dashboard recomputes the A/B verdict every few seconds and people stop an
experiment the first time it names a winner. A fixed-sample 95% interval read at every look
names a false winner far more often than 5% (the "peeking" problem). A confidence sequence
holds at every look at once: with probability at least 1 - alpha (asymptotically), the true
difference is inside the interval at every number of calls, so a winner may be read whenever
it appears and the experiment stopped then.

Method: the asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas
("Time-uniform central limit theory and asymptotic confidence sequences", Annals of
Statistics, 2024), with its Gaussian-mixture boundary. For two arms it is the always-valid
interval of the mixture SPRT (Johari, Koomen, Pekelis and Walsh, "Peeking at A/B tests", KDD
2017) with the variances estimated from the data:

    diff ± sqrt( V · (t·rho² + 1)/(t·rho²) · log((t·rho² + 1) / alpha²) ),
    V = s_a²/n_a + s_b²/n_b,   t = (s_a² + s_b²)/V  (= n for n calls in each arm).

`rho²` sets where the boundary is tightest: at `PLANNED_CALLS` calls per arm
(rho² = (-2 log alpha + log(1 - 2 log alpha)) / PLANNED_CALLS). The unit is the call: each
call gives one value (for latency, the median of its turns), so the values are independent
and one long call does not weigh more than a short one. `benchmarks/ab_calibration.py`
measures the false-winner rate under peeking and the power.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05
PLANNED_CALLS = 200
METHOD = (
    "always-valid confidence sequences (asymptotic, Gaussian mixture: Waudby-Smith et al. "
    "2024; the mixture SPRT interval of Johari et al. 2017) on one value per call, the 5% "
    "error shared by the latencies compared (Bonferroni): they hold at every look together, "
    "so a winner can be read whenever it appears and is false at most 5% of the time"
)


@dataclass(frozen=True, slots=True)
class Interval:
    """`diff` (b - a) with its always-valid interval, from `calls` = (n_a, n_b)."""

    diff: float
    low: float
    high: float
    calls: tuple[int, int]
    variances: tuple[float, float]

    def excludes_zero(self) -> bool:
        return self.low > 0.0 or self.high < 0.0


def _rho2(alpha: float, planned: int) -> float:
    two_log = -2.0 * math.log(alpha)
    return (two_log + math.log(two_log + 1.0)) / planned


def half_width(
    variances: tuple[float, float],
    calls: tuple[float, float],
    *,
    alpha: float = ALPHA,
    planned: int = PLANNED_CALLS,
) -> float:
    """Half the width of the interval on the difference of means, at these calls per arm."""
    (var_a, var_b), (n_a, n_b) = variances, calls
    v = var_a / n_a + var_b / n_b
    if v <= 0.0:
        return 0.0
    t = (var_a + var_b) / v
    r = _rho2(alpha, planned) * t
    return math.sqrt(v * (r + 1.0) / r * math.log((r + 1.0) / alpha**2))


def rate_variance(values: Sequence[float] | np.ndarray) -> float:
    """A variance floor for per-call rates in [0, 1]: p(1 - p) at p = (sum + 1) / (n + 2).
    Without it, an arm with no event at all (0 of 9 calls failed over) has variance 0 and an
    interval of [0, 0], which claims a certainty nine calls do not give."""
    p = (float(np.sum(values)) + 1.0) / (len(values) + 2.0)
    return p * (1.0 - p)


def _variance(data: np.ndarray, rate: bool) -> float:
    var = float(data.var(ddof=1))
    return max(var, rate_variance(data)) if rate else var


def mean_interval(
    values: Sequence[float],
    *,
    rate: bool = False,
    alpha: float = ALPHA,
    planned: int = PLANNED_CALLS,
) -> tuple[float, float, float]:
    """(mean, low, high) of one arm's per-call values, always-valid like the difference;
    `rate`: values in [0, 1] (variance floored by `rate_variance`, interval clipped)."""
    data = np.asarray(values, dtype=np.float64)
    mean = float(data.mean())
    if len(data) < 2:
        return mean, -math.inf, math.inf
    var = _variance(data, rate)
    n = len(data)
    r = _rho2(alpha, planned) * n
    half = math.sqrt(var / n * (r + 1.0) / r * math.log((r + 1.0) / alpha**2))
    if rate:
        return mean, max(mean - half, 0.0), min(mean + half, 1.0)
    return mean, mean - half, mean + half


def difference(
    a: Sequence[float],
    b: Sequence[float],
    *,
    rate: bool = False,
    alpha: float = ALPHA,
    planned: int = PLANNED_CALLS,
) -> Interval:
    """`mean(b) - mean(a)` with its confidence sequence; each arm needs two values or more.
    `rate`: values in [0, 1], variances floored by `rate_variance`."""
    xa, xb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(xa) < 2 or len(xb) < 2:
        raise ValueError("each arm needs at least two calls for an interval")
    variances = (_variance(xa, rate), _variance(xb, rate))
    calls = (len(xa), len(xb))
    diff = float(xb.mean() - xa.mean())
    half = half_width(variances, calls, alpha=alpha, planned=planned)
    return Interval(diff, diff - half, diff + half, calls, variances)


def more_calls(
    interval: Interval, *, alpha: float = ALPHA, planned: int = PLANNED_CALLS
) -> int | None:
    """Roughly how many more calls per arm would make the interval exclude 0 if the observed
    difference and spreads held (both arms grown in proportion); None for a difference of 0.
    Computed with the same boundary as the verdict, so it stays meaningful under peeking."""
    if interval.diff == 0.0:
        return None
    target = abs(interval.diff)

    def wide(k: float) -> bool:
        calls = (interval.calls[0] * k, interval.calls[1] * k)
        return half_width(interval.variances, calls, alpha=alpha, planned=planned) >= target

    low, high = 1.0, 2.0
    while wide(high):
        low, high = high, high * 2.0
        if high > 1e9:
            return None
    for _ in range(40):
        mid = (low + high) / 2.0
        low, high = (mid, high) if wide(mid) else (low, mid)
    most = max(interval.calls)
    return max(math.ceil(most * high) - most, 1)
