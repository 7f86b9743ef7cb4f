"""Guardrails: what a faster arm must not make worse, per arm with always-valid intervals.

One value per call (so a long call weighs as much as a short one), compared between arms with
the same confidence sequence as latency (`sequential.py`); for rates, each arm's variance is
at least that of (events + 1) / (calls + 2), so an arm with no event yet is not "certain".
Higher is worse for every guardrail except the call's duration, which is shown but not judged
(a longer call can be a better conversation or a stuck one). A latency winner that is
significantly worse on a judged guardrail is reported as "faster but worse on X", not as the
winner.

- upstream failures: calls whose upstream (Inworld) failed (refused, dropped, error);
- failovers: calls moved to the number's fallback mode;
- barge-ins per agent turn: how often callers talk over the agent;
- early hangups: calls the caller ended within `EARLY_HANGUP_S` of the greeting's first audio
  (call start + the greeting's response time);
- transfers: calls handed to a person (`transfer_call`);
- tool errors per tool call: calls with tools only;
- duration (s): not judged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from voiceagent.report.sequential import difference, mean_interval
from voiceagent.store.records.reading import CallRow, TurnRow

EARLY_HANGUP_S = 10.0
PerCall = Callable[[CallRow, float | None], float | None]


def _early_hangup(call: CallRow, greeting_ms: float | None) -> float | None:
    if call.duration_s is None or call.end_reason is None:
        return None  # still in progress
    heard_at = (greeting_ms or 0.0) / 1000.0
    return float(call.ended_by == "caller" and call.duration_s <= heard_at + EARLY_HANGUP_S)


# name → (per-call value (None: the call does not count), judged: higher is worse)
GUARDRAILS: dict[str, tuple[PerCall, bool]] = {
    "upstream failures": (lambda c, _: float(c.upstream_failure is not None), True),
    "failovers": (lambda c, _: float(c.failover_from is not None), True),
    "barge-ins per agent turn": (
        lambda c, _: c.barge_ins / c.agent_turns if c.agent_turns else None, True),
    "early hangups": (_early_hangup, True),
    "transfers": (lambda c, _: float(c.transfer is not None), True),
    "tool errors per tool call": (
        lambda c, _: c.tool_errors / c.tool_calls if c.tool_calls else None, True),
    "duration (s)": (lambda c, _: c.duration_s, False),
}  # fmt: skip


RATES = frozenset(GUARDRAILS) - {"duration (s)"}  # per-call values in [0, 1]


@dataclass(frozen=True, slots=True)
class Guardrail:
    """One guardrail of one arm: the mean of its per-call values, always-valid interval."""

    name: str
    calls: int
    mean: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True, slots=True)
class GuardrailDiff:
    """`arm_b` - `arm_a` on one guardrail; `worse` names the arm significantly worse."""

    number: str
    name: str
    arm_a: str
    arm_b: str
    diff: float | None
    low: float | None
    high: float | None
    worse: str | None


def per_call_values(calls: Sequence[CallRow], turns: Sequence[TurnRow]) -> dict[str, list[float]]:
    """Each guardrail's values over `calls` (one per call that counts)."""
    greeting: dict[str, float] = {}
    for t in turns:
        value = t.figures.get("response_ms")
        if t.kind == "greeting" and value is not None:
            greeting.setdefault(t.call_sid, float(value))
    out: dict[str, list[float]] = {name: [] for name in GUARDRAILS}
    for call in calls:
        for name, (value_of, _) in GUARDRAILS.items():
            value = value_of(call, greeting.get(call.call_sid))
            if value is not None:
                out[name].append(value)
    return out


def arm_guardrails(values: Mapping[str, list[float]]) -> list[Guardrail]:
    """Per guardrail: calls counted, mean and always-valid interval (None without calls)."""
    out = []
    for name in GUARDRAILS:
        data = values[name]
        if not data:
            out.append(Guardrail(name, 0, None, None, None))
            continue
        mean, low, high = mean_interval(data, rate=name in RATES)
        finite = len(data) >= 2
        out.append(Guardrail(name, len(data), round(mean, 4),
                             round(low, 4) if finite else None,
                             round(high, 4) if finite else None))  # fmt: skip
    return out


def compare_guardrails(
    number: str,
    a: tuple[str, Mapping[str, list[float]]],
    b: tuple[str, Mapping[str, list[float]]],
    min_calls: int,
) -> list[GuardrailDiff]:
    """B - A on each guardrail with `min_calls` calls or more in both arms."""
    (name_a, va), (name_b, vb) = a, b
    out = []
    for name, (_, judged) in GUARDRAILS.items():
        if min(len(va[name]), len(vb[name])) < max(min_calls, 2):
            out.append(GuardrailDiff(number, name, name_a, name_b, None, None, None, None))
            continue
        iv = difference(va[name], vb[name], rate=name in RATES)
        worse = None
        if judged and iv.excludes_zero():
            worse = name_b if iv.diff > 0 else name_a
        out.append(GuardrailDiff(number, name, name_a, name_b, round(iv.diff, 4),
                                 round(iv.low, 4), round(iv.high, 4), worse))  # fmt: skip
    return out
