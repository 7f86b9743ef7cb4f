"""`voiceagent report`: per number and arm, calls, turns, latency percentiles, guardrails and
which arm is faster, with always-valid intervals on per-call values and a sample ratio check
(stats.py, sequential.py, guardrails.py, srm.py), printed as table/JSON/CSV (render.py);
`voiceagent experiments` (experiments.py) sums each experiment up.
"""

from __future__ import annotations

from voiceagent.report.command import add_parser, load_report, parse_since
from voiceagent.report.render import render
from voiceagent.report.stats import ArmStats, Comparison, Quantiles, Report, build_report
from voiceagent.store.records.reading import CallRow, TurnRow, load_rows, rows_from_sessions

__all__ = [
    "ArmStats",
    "CallRow",
    "Comparison",
    "Quantiles",
    "Report",
    "TurnRow",
    "add_parser",
    "build_report",
    "load_report",
    "load_rows",
    "parse_since",
    "render",
    "rows_from_sessions",
]
