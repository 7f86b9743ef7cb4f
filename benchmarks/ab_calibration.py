"""A/B verdicts under peeking: false winners, power and calls needed, old vs new, in one run.

Simulates experiments the way people run them: calls arrive one by one, each assigned to arm
A or B at random (50/50), someone looks at the verdict after every `--look-every` calls up to
`--max-calls` calls, and stops the first time a winner is named. Each call has its own level
(call-to-call variation: line, region, caller) and 1 + Poisson(2) turns around it with a
skewed per-turn spread and a 5 % slow tail; each turn is audible a skewed moment after its
response; greetings are one per call. Turns of one call are therefore not independent, as in
real records.

Two verdicts on the same simulated calls:
- new: the report's always-valid confidence sequences on per-call values (report/sequential.py)
  with its minimum of calls per arm, the 5 % shared by the three latencies (Bonferroni);
- old: the fixed-sample 95 % bootstrap interval on medians that resamples calls (the report's
  method before #29, `report/bootstrap.py`), with its minimum of 20 turns and 5 calls per arm.

Printed: the false-winner rate in A/A experiments (B = A) at each look alone (worst look) and
over all looks together; the power for B slower by +20, +40 and +80 ms (share of experiments
naming A by `--max-calls`) and the calls needed (median and 80th percentile of the calls at
the first correct verdict). A winner on any compared latency (response, audible or greeting)
counts, as the report names one on any.

Run: `.venv/bin/python benchmarks/ab_calibration.py` (about 10 minutes on 2 cores;
`--experiments 100 --bootstrap-resamples 200` for a quick look).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import numpy as np

from voiceagent.report.bootstrap import bootstrap_verdict
from voiceagent.report.sequential import difference
from voiceagent.report.stats import comparison_alpha

MIN_CALLS = 5  # the report's default minimum of calls per arm


@dataclass(frozen=True, slots=True)
class Experiment:
    """The calls of one experiment, in arrival order."""

    arm: np.ndarray  # 0 = A, 1 = B, per call
    turns: list[np.ndarray]  # response latencies of each call's turns
    audible: list[np.ndarray]  # audible latencies of each call's turns
    greeting: np.ndarray  # greeting latency of each call
    per_call: np.ndarray  # median of each call's turns: the report's per-call value
    audible_per_call: np.ndarray


def simulate_experiment(rng: np.random.Generator, calls: int, shift_ms: float) -> Experiment:
    """`calls` calls; arm B's turns and greetings are `shift_ms` slower."""
    arm = rng.integers(0, 2, calls)
    level = rng.normal(0.0, 80.0, calls)
    counts = 1 + np.minimum(rng.poisson(2.0, calls), 7)
    turns = []
    for c in range(calls):
        noise = rng.gamma(4.0, 40.0, counts[c]) - 160.0
        slow = rng.random(counts[c]) < 0.05
        turns.append(550.0 + level[c] + noise + 400.0 * slow + shift_ms * arm[c])
    greeting = 650.0 + 0.5 * level + rng.gamma(4.0, 30.0, calls) - 120.0 + shift_ms * arm
    audible = [t + rng.gamma(2.0, 40.0, len(t)) for t in turns]
    return Experiment(arm, turns, audible, greeting, np.array([np.median(t) for t in turns]),
                      np.array([np.median(t) for t in audible]))  # fmt: skip


def new_verdict(exp: Experiment, upto: int) -> int:
    """-1: A named faster, +1: B named faster, 0: no winner, after the first `upto` calls."""
    arm = exp.arm[:upto]
    if min(int((arm == 0).sum()), int((arm == 1).sum())) < MIN_CALLS:
        return 0
    for values in (exp.per_call[:upto], exp.audible_per_call[:upto], exp.greeting[:upto]):
        interval = difference(values[arm == 0], values[arm == 1], alpha=comparison_alpha(2))
        if interval.excludes_zero():
            return 1 if interval.diff < 0 else -1
    return 0


def old_verdict(exp: Experiment, upto: int, rng: np.random.Generator, resamples: int) -> int:
    """The same, with the fixed-sample bootstrap interval (the report before #29)."""
    arm = exp.arm[:upto]
    sides = []
    for side in (0, 1):
        index = np.flatnonzero(arm == side)
        sids = [str(c) for c in index for _ in exp.turns[c]]
        values = [float(v) for c in index for v in exp.turns[c]]
        audible = [float(v) for c in index for v in exp.audible[c]]
        greet = [float(exp.greeting[c]) for c in index]
        sides.append(((values, sids), (audible, sids), (greet, [str(c) for c in index])))
    for metric in (0, 1, 2):
        a, b = sides[0][metric], sides[1][metric]
        winner = bootstrap_verdict(a, b, rng=rng, resamples=resamples)
        if winner:
            return winner
    return 0


@dataclass(slots=True)
class Tally:
    """Per experiment: the call count at the first verdict and which arm it named."""

    first: list[tuple[int, int]]  # (calls, verdict) at the first winner; (0, 0) if none
    per_look: np.ndarray  # experiments naming a winner at each look, looked at alone

    def named(self, side: int | None = None) -> float:
        hits = [v for _, v in self.first if v != 0 and (side is None or v == side)]
        return len(hits) / len(self.first)

    def calls_needed(self, side: int) -> tuple[float, float]:
        calls = [n for n, v in self.first if v == side]
        if not calls:
            return float("nan"), float("nan")
        return float(np.median(calls)), float(np.percentile(calls, 80))


def run(
    experiments: int,
    shift_ms: float,
    *,
    method: str,
    seed: int,
    max_calls: int = 500,
    look_every: int = 10,
    resamples: int = 500,
) -> Tally:
    """Simulate `experiments` experiments and peek at each with `method` ("new" or "old").
    The old method stops at its first winner (its per-look rates are not computed)."""
    rng = np.random.default_rng(seed)
    boot_rng = np.random.default_rng(seed + 1)
    looks = list(range(look_every, max_calls + 1, look_every))
    per_look = np.zeros(len(looks))
    first = []
    for _ in range(experiments):
        exp = simulate_experiment(rng, max_calls, shift_ms)
        found = (0, 0)
        for i, upto in enumerate(looks):
            if method == "new":
                verdict = new_verdict(exp, upto)
                per_look[i] += verdict != 0
            else:
                verdict = old_verdict(exp, upto, boot_rng, resamples)
            if verdict != 0 and found == (0, 0):
                found = (upto, verdict)
                if method == "old":
                    break
        first.append(found)
    return Tally(first, per_look / experiments)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=400)
    parser.add_argument("--power-experiments", type=int, default=200,
                        help="experiments per effect size (each method)")  # fmt: skip
    parser.add_argument("--max-calls", type=int, default=500)
    parser.add_argument("--look-every", type=int, default=10)
    parser.add_argument("--bootstrap-resamples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=29)
    args = parser.parse_args()
    opts = {"max_calls": args.max_calls, "look_every": args.look_every,
            "resamples": args.bootstrap_resamples}  # fmt: skip
    started = time.monotonic()
    print(f"A/B calibration: looks every {args.look_every} calls up to {args.max_calls}, "
          f"stop at the first winner; {args.experiments} A/A experiments, "
          f"{args.power_experiments} per effect; old = bootstrap with "
          f"{args.bootstrap_resamples} resamples")  # fmt: skip
    new_aa = run(args.experiments, 0.0, method="new", seed=args.seed, **opts)
    old_aa = run(args.experiments, 0.0, method="old", seed=args.seed, **opts)
    print("\nfalse winners in A/A experiments (target <= 5 %)")
    print(
        f"  new: all looks together {new_aa.named():6.1%}   worst single look "
        f"{new_aa.per_look.max():6.1%}"
    )
    print(f"  old: all looks together {old_aa.named():6.1%}")
    print(
        f"\npower (A named faster by {args.max_calls} calls) and calls needed "
        "(median / p80 of calls at the first correct verdict)"
    )
    for shift in (20.0, 40.0, 80.0):
        line = f"  +{shift:.0f} ms:"
        for method in ("new", "old"):
            tally = run(args.power_experiments, shift, method=method, seed=args.seed + int(shift),
                        **opts)  # fmt: skip
            med, p80 = tally.calls_needed(-1)
            line += (f"  {method} {tally.named(-1):6.1%} (wrong arm {tally.named(1):.1%}), "
                     f"calls {med:.0f} / {p80:.0f};")  # fmt: skip
        print(line.rstrip(";"))
    print(f"\n({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
