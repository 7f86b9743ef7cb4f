"""`voiceagent experiments`: each running experiment's state, its arms and the calls it needs.

A running experiment is one in the config (`numbers.<number>.experiment`); its records are
read like the report's. The state, from the report (stats.py), in the order it wins:

- `mismatch`: the calls per arm do not match the weights (assignment or records broken);
- `faster but worse`: a latency winner is significantly worse on a guardrail;
- `winner`: one arm is faster (always-valid interval excluding 0), no arm faster elsewhere;
- `mixed`: arms are faster on different latencies (e.g. sooner `play`, later audible audio);
- `no difference`: every latency interval lies within ±equivalence_ms;
- `collecting`: anything else; `calls_needed` says roughly how many more calls per arm.

The dashboard shows the same list at the top of its page (`figures.page_data`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from voiceagent.config import Config
from voiceagent.report.arms import arm_settings
from voiceagent.report.stats import Comparison, Report, calls_needed


@dataclass(frozen=True, slots=True)
class ExperimentStatus:
    """One experiment as `voiceagent experiments` and the dashboard show it."""

    number: str
    name: str
    state: str
    headline: str
    arms: list[dict[str, Any]]
    verdicts: list[str]
    calls_needed: int | None
    sample_ratio: str | None = None
    worse_on: list[str] = field(default_factory=list)


def _state(comparisons: list[Comparison], mismatch: bool) -> tuple[str, str]:
    """(state, headline) of one experiment from its comparisons."""
    if mismatch:
        return "mismatch", "sample ratio mismatch: no winner named"
    worse = [c for c in comparisons if c.state == "worse"]
    if worse:
        return "faster but worse", worse[0].verdict.split(":", 1)[0]
    winners = {c.winner for c in comparisons if c.winner is not None}
    if len(winners) == 1:
        return "winner", f"winner: {winners.pop()}"
    if len(winners) > 1:
        named = "; ".join(f"{c.winner} on {c.metric.removesuffix('_ms')}" for c in comparisons
                          if c.winner is not None)  # fmt: skip
        return "mixed", f"mixed: each arm is faster on something ({named})"
    if comparisons and all(c.state == "no difference" for c in comparisons):
        return "no difference", "no difference between the arms"
    return "collecting", "collecting: no verdict yet"


def experiment_statuses(report: Report, config: Config) -> list[ExperimentStatus]:
    """The state of each experiment in `config`, from `report` (numbers in config order)."""
    out = []
    for number, entry in config.numbers.items():
        if entry.experiment is None:
            continue
        comparisons = [c for c in report.comparisons if c.number == number]
        ratio = next((r for r in report.ratios if r.number == number), None)
        state, headline = _state(comparisons, ratio is not None and ratio.mismatch)
        settings = arm_settings(config, number)
        calls = {a.arm: a.calls for a in report.arms if a.number == number}
        arms = [{"name": arm.name, "mode": arm.mode, "weight": arm.weight,
                 "calls": calls.get(arm.name, 0), "changes": settings.get(arm.name, [])}
                for arm in entry.experiment.arms]  # fmt: skip
        needed = calls_needed(comparisons) if state == "collecting" else None
        if state == "collecting" and not comparisons:
            needed = report.settings.get("min_calls", 5)  # no calls in some arm yet
        out.append(ExperimentStatus(
            number=number, name=entry.experiment.name, state=state, headline=headline,
            arms=arms, verdicts=[f"{c.metric.removesuffix('_ms')}: {c.verdict}"
                                 for c in comparisons],
            calls_needed=needed, sample_ratio=ratio.note if ratio else None,
            worse_on=sorted({w for c in comparisons for w in c.worse_on}),
        ))  # fmt: skip
    return out


def render_statuses(statuses: list[ExperimentStatus], method: str) -> str:
    """The experiments as text: one block per experiment."""
    if not statuses:
        return "no experiments in the config\n"
    lines = []
    for s in statuses:
        lines.append(f"{s.number} experiment {s.name}: {s.state.upper()}: {s.headline}")
        if s.sample_ratio:
            lines.append(f"  {s.sample_ratio}")
        for arm in s.arms:
            changes = "; ".join(arm["changes"]) or f"mode: {arm['mode']}"
            lines.append(f"  arm {arm['name']} (weight {arm['weight']:g}, {arm['calls']} calls): "
                         f"{changes}")  # fmt: skip
        lines += [f"  {v}" for v in s.verdicts]
        if s.calls_needed is not None:
            lines.append(f"  calls needed: about {s.calls_needed} more per arm")
        lines.append("")
    lines.append(f"verdicts: {method}")
    return "\n".join(lines) + "\n"


def cmd_experiments(args: argparse.Namespace) -> int:
    from voiceagent.logging import configure_logging
    from voiceagent.report.command import config_or_none, load_report, records_url

    configure_logging("warning")
    config = config_or_none(args.config, quiet=False)
    if config is None:
        return 1
    url = records_url(args.database_url)
    if url is None:
        return 1
    report = asyncio.run(load_report(url, config=config))
    statuses = experiment_statuses(report, config)
    if args.json:
        print(json.dumps({"method": report.method,
                          "experiments": [asdict(s) for s in statuses]}, indent=2))  # fmt: skip
    else:
        sys.stdout.write(render_statuses(statuses, report.method))
    return 0


def add_parser(sub: Any) -> None:
    """Register `voiceagent experiments` on the CLI's subparsers."""
    p = sub.add_parser("experiments", help="each experiment's state, arms and calls needed")
    p.add_argument("--config", help="per-number YAML (default: VOICEAGENT_CONFIG)")
    p.add_argument("--database-url", help="records database (default: DATABASE_URL)")
    p.add_argument("--json", action="store_true", help="print the experiments as JSON")
    p.set_defaults(func=cmd_experiments)
