"""The report as a table (people), JSON (programs) or CSV (spreadsheets)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from typing import Literal

from voiceagent.report.outbound import outbound_json, outbound_lines
from voiceagent.report.stats import ArmStats, Quantiles, Report

Format = Literal["table", "json", "csv"]
CSV_FIELDS = ("number", "arm", "mode", "calls", "turns", "failovers", "metric", "n", "p50",
              "p90", "p99")  # fmt: skip


def render(report: Report, fmt: Format = "table") -> str:
    """`report` in the given format."""
    if fmt == "json":
        return render_json(report)
    if fmt == "csv":
        return render_csv(report)
    return render_table(report)


def render_json(report: Report) -> str:
    data = asdict(report)
    data["since"] = report.since.isoformat() if report.since else None
    data["outbound"] = [outbound_json(s) for s in report.outbound]
    return json.dumps(data, indent=2)


def render_csv(report: Report) -> str:
    """One row per number, arm and latency figure."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for arm in report.arms:
        for metric, q in arm.latency.items():
            writer.writerow({
                "number": arm.number, "arm": arm.arm, "mode": arm.mode, "calls": arm.calls,
                "turns": arm.turns, "failovers": arm.failovers, "metric": metric,
                "n": q.n, "p50": _csv(q.p50), "p90": _csv(q.p90), "p99": _csv(q.p99),
            })  # fmt: skip
    return out.getvalue()


def _csv(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _guard(value: float | None, name: str) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if name.startswith("duration") else f"{value:.1%}"


def _guardrail_lines(arm: ArmStats) -> list[str]:
    shown = [g for g in arm.guardrails if g.calls]
    if not shown:
        return []
    lines = [f"    {'guardrails (per call)':<26}{'calls':>6}{'mean':>8}  always-valid 95%"]
    for g in shown:
        interval = f"[{_guard(g.low, g.name)}, {_guard(g.high, g.name)}]"
        lines.append(f"    {g.name:<26}{g.calls:>6}{_guard(g.mean, g.name):>8}  {interval}")
    return lines


def _arm_lines(arm: ArmStats) -> list[str]:
    lines = [
        f"  arm {arm.arm} ({arm.mode}): {arm.calls} calls, {arm.turns} turns, "
        f"{arm.failovers} failovers",
        f"    {'latency (ms)':<18}{'n':>6}{'p50':>8}{'p90':>8}{'p99':>8}",
    ]
    for metric, q in arm.latency.items():
        if q.n:
            lines.append(f"    {metric.removesuffix('_ms'):<18}{q.n:>6}{_row(q)}")
    return lines + _guardrail_lines(arm)


def _row(q: Quantiles) -> str:
    return "".join(f"{_ms(v):>8}" for v in (q.p50, q.p90, q.p99))


def render_table(report: Report) -> str:
    since = report.since.isoformat(timespec="minutes") if report.since else "the beginning"
    lines = [f"voiceagent report: {report.calls} calls, {report.turns} turns since {since}"]
    if not report.arms and not report.outbound:
        lines.append("no calls recorded yet")
    for number in sorted({a.number for a in report.arms} | {o.number for o in report.outbound}):
        lines += ["", number]
        ratio = next((r for r in report.ratios if r.number == number), None)
        if ratio is not None and ratio.mismatch:
            lines.append(f"  !! {ratio.note}")
        for arm in (a for a in report.arms if a.number == number):
            lines += _arm_lines(arm)
        if ratio is not None and not ratio.mismatch:
            lines.append(f"  {ratio.note}")
        for d in report.guardrail_diffs:
            if d.number == number and d.worse is not None:
                lines.append(f"  guardrail: {d.worse} is worse on {d.name}: {d.arm_b} - "
                             f"{d.arm_a} = {d.diff:+.3g}, always-valid 95% CI [{d.low:+.3g}, "
                             f"{d.high:+.3g}]")  # fmt: skip
        lines += outbound_lines(report.outbound, number)
        for c in (c for c in report.comparisons if c.number == number):
            lines.append(f"  {c.metric.removesuffix('_ms')}: {c.verdict}")
    if report.comparisons:
        lines += ["", f"verdicts: {report.method}"]
    return "\n".join(lines) + "\n"
