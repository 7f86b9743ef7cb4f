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


def _simulate(realtime_ms: int, router_ms: int) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "voiceagent", "simulate", "--calls", "30", "--concurrency", "30",
         "--seed", "2", "--realtime-first-audio-ms", str(realtime_ms),
         "--router-ttfb-ms", str(router_ms)],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _ab_response_p50(out: str) -> dict[str, float]:
    """The A/B number's response p50 per arm, read from the printed report."""
    section = out.split("voiceagent report:", 1)[1].split("+18005550103", 1)[1]
    p50: dict[str, float] = {}
    arm = ""
    for line in section.splitlines():
        if line.strip().startswith("arm "):
            arm = line.split()[1]
        elif line.strip().startswith("response ") and arm:
            p50[arm] = float(line.split()[2])
    return p50


def test_delays_injected_per_arm_show_in_the_report_and_pick_the_winner() -> None:
    """Upstream delays set differently per mode in the fakes appear in each arm's response
    latency within tolerance, and the report names the faster arm, whichever it is."""
    out = _simulate(realtime_ms=150, router_ms=600)
    p50 = _ab_response_p50(out)
    assert abs(p50["realtime"] - 150) < 60 and abs(p50["relay"] - 600) < 80, p50
    assert "response: realtime is faster" in out
    out = _simulate(realtime_ms=600, router_ms=150)
    p50 = _ab_response_p50(out)
    assert abs(p50["realtime"] - 600) < 60 and abs(p50["relay"] - 150) < 80, p50
    assert "response: relay is faster" in out
