"""`voiceagent simulate`, the README's first command, as a user runs it."""

from __future__ import annotations

import subprocess
import sys


def test_simulate_places_calls_in_both_protocols_and_prints_the_report() -> None:
    """The rehearsal runs offline, calls each of the sample's numbers and arms (9, the two
    outbound numbers included) in both modes, prints per-call lines in the report's own latency
    definitions (named), shows one call's context and signed event from its local webhook
    receiver, and ends with the A/B report."""
    proc = subprocess.run(
        [sys.executable, "-m", "voiceagent", "simulate", "--calls", "9", "--no-tools",
         "--no-outbound", "--transcripts"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "media-streams" in out and "conversation-relay" in out
    assert "agent: Hello! Thanks for calling Acme." in out
    assert "voiceagent report: 10 calls" in out  # the nine, and the webhooks call
    assert "latency per call, as the report defines it" in out
    assert "; response " in out and "reply after caller's turn" not in out
    assert "calls finished: 9/9" in proc.stderr
    assert "context asked (1, signature verified)" in out
    assert "delivered, signature verified: reason caller_hangup" in out
    assert "the caller heard: Hello Ada! Calling about order A-1042?" in out


def test_simulate_places_a_person_a_voicemail_and_a_no_answer() -> None:
    """The outbound part calls a person (AMD: human, greeted by name), an answering machine
    (the voicemail message, in relay mode) and nobody (no-answer), and prints what each heard."""
    proc = subprocess.run(
        [sys.executable, "-m", "voiceagent", "simulate", "--calls", "1", "--no-tools"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "status completed; answered by human; legs: media-streams" in out
    assert "agent: Hi Ana, this is Acme calling to confirm your appointment" in out
    assert "status completed; answered by machine_end_beep; legs: conversation-relay" in out
    assert "agent: Hi Ben, this is Acme about your appointment tomorrow at ten." in out
    assert "status no-answer; answered by -; legs: none" in out


def _simulate(realtime_ms: int, router_ms: int) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "voiceagent", "simulate", "--calls", "30", "--concurrency", "30",
         "--no-tools", "--no-outbound", "--seed", "2", "--number", "+18005550103",
         "--realtime-first-audio-ms", str(realtime_ms), "--router-ttfb-ms", str(router_ms)],
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
