"""`voiceagent simulate`, the README's first command, as a user runs it."""

from __future__ import annotations

import subprocess
import sys


def test_simulate_places_calls_in_both_protocols_and_prints_the_report() -> None:
    """The rehearsal runs offline, calls each of the sample's numbers and arms (7) in both
    modes, prints per-call lines in the report's own latency definitions (named) and ends with
    the A/B report."""
    proc = subprocess.run(
        [sys.executable, "-m", "voiceagent", "simulate", "--calls", "7", "--no-tools"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "media-streams" in out and "conversation-relay" in out
    assert "agent: Hello! Thanks for calling Acme." in out
    assert "voiceagent report: 7 calls" in out
    assert "latency per call, as the report defines it" in out
    assert "; response " in out and "reply after caller's turn" not in out
    assert "calls finished: 7/7" in proc.stderr


def _simulate(realtime_ms: int, router_ms: int) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "voiceagent", "simulate", "--calls", "30", "--concurrency", "30",
         "--no-tools", "--seed", "2", "--realtime-first-audio-ms", str(realtime_ms),
         "--router-ttfb-ms", str(router_ms)],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_delays_injected_per_arm_pick_the_winner_either_way() -> None:
    """Upstream delays set differently per mode in the fakes decide which arm the report names
    faster, whichever it is (how closely the latencies follow the delays is measured by
    benchmarks/realtime_load.py and benchmarks/relay_latency.py, not asserted here)."""
    assert "response: realtime is faster" in _simulate(realtime_ms=150, router_ms=600)
    assert "response: relay is faster" in _simulate(realtime_ms=600, router_ms=150)
