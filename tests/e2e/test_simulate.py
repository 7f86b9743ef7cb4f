"""`voiceagent simulate`, the README's first command, as a user runs it."""

from __future__ import annotations

import subprocess
import sys


def test_simulate_places_calls_in_both_protocols_and_prints_the_report() -> None:
    """The rehearsal runs offline, serves calls in both modes and ends with the A/B report."""
    proc = subprocess.run(
        [sys.executable, "-m", "voiceagent", "simulate", "--calls", "4"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "media-streams" in out and "conversation-relay" in out
    assert "agent: Hello! Thanks for calling Acme." in out
    assert "voiceagent report: 4 calls" in out
    assert "calls finished: 4/4" in proc.stderr
