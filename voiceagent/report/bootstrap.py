"""The report's verdict before #29, kept as the reference `benchmarks/ab_calibration.py`
compares the always-valid one against: a fixed-sample 95% bootstrap interval on the
difference of medians that resamples whole calls.

Valid for one look at a fixed number of calls; read at every look (as a dashboard is), it
names false winners far more often than 5%. The report itself uses `sequential.py`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


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


def bootstrap_verdict(
    a: tuple[Sequence[float], Sequence[str]],
    b: tuple[Sequence[float], Sequence[str]],
    *,
    rng: np.random.Generator,
    resamples: int = 2000,
    min_turns: int = 20,
    min_calls: int = 5,
) -> int:
    """-1 when A is named faster, +1 when B is, 0 for no winner: `(values, call_sids)` per
    arm, the 95% interval of B - A on the median excluding 0, above the minimum data."""
    for values, sids in (a, b):
        if len(values) < min_turns or len(set(sids)) < min_calls:
            return 0
    diffs = bootstrap_medians(*b, rng, resamples) - bootstrap_medians(*a, rng, resamples)
    low, high = np.percentile(diffs, [2.5, 97.5])
    if low <= 0.0 <= high:
        return 0
    return 1 if float(np.median(b[0]) - np.median(a[0])) < 0 else -1
