"""The gap a caller hears across an Inworld Realtime reconnect (issue 28).

In one process: the app on 127.0.0.1, the fake Inworld Realtime, the fake Router and a simulated
Media Streams caller (the test rig's `running_rig`). Each call greets, the caller speaks, and
the fake kills the Inworld socket right after the first audio of the answer
(`drop_mid_reply=2`, only that call's first session); voiceagent opens a new session, replays
the conversation and asks for the cut answer again; the caller then speaks once more.

Per call, measured at the caller (monotonic clocks of one process):

- gap heard: from the `clear` that stops the cut answer to the first audio of the new
  session's answer being played (what the caller hears as silence);
- drop → new audio: from the fake closing the socket to that first new audio (an upper bound
  that includes audio still playing at the caller when the socket died);
- reference, side by side: the caller's ordinary turn latency on the same calls (end of the
  caller's speech → first audio of the answer, the turn after the reconnect): the gap as a
  ratio of an ordinary answer's wait.

With `--filler-after MS` the number has a 2 s reconnect filler played `MS` into a gap, and
`--connect-delay MS` makes each new session that slow to open: the gap heard is then the
silence before the filler (or the answer), and the fillers played are counted.

Run: `.venv/bin/python benchmarks/realtime_reconnect.py [--calls 50] [--filler-after 500
--connect-delay 800]`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.rig import REALTIME_A, realtime_options, rig_config, running_rig
from voiceagent.audio import speech_like_ulaw, wrap_wav
from voiceagent.config import Config
from voiceagent.sim.script import HangUp, Listen, Say

SCRIPT = [Listen(), Say(ms=600), Listen(), Say(ms=600, seed=2), Listen(), HangUp()]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _filler_config(folder: str, after_ms: int) -> Config:
    """The rig's config with a 2 s filler on REALTIME_A, played `after_ms` into a gap."""
    clip = Path(folder) / "filler.wav"
    clip.write_bytes(wrap_wav(speech_like_ulaw(2000, seed=5), 8000))
    knobs = {"filler": str(clip), "filler_after_ms": after_ms}
    return rig_config(**{REALTIME_A: {"mode": "realtime-passthrough",
                                      "realtime": {"upstream_reconnect": knobs}}})  # fmt: skip


async def _one(rig: Any, delay_s: float) -> tuple[float, float, float] | None:
    """(gap heard, drop → new audio, reference turn latency) of one call, in ms."""
    fake = rig.realtime
    before = len(fake.sessions)
    fake.options = realtime_options(drop_mid_reply=2, drop_sessions=before + 1,
                                    connect_delay_s=delay_s)  # fmt: skip
    record = await rig.place_call(REALTIME_A, SCRIPT, record_timing=True)
    dropped = fake.sessions[before]
    if dropped.closed is None or len(fake.sessions) < before + 2 or not record.clears:
        return None
    cleared = next((t for t in record.clears if t >= dropped.closed - 0.05), None)
    if cleared is None:
        return None
    resumed = next((t for t in record.heard_starts if t > cleared), None)
    latencies = record.turn_latencies_ms()
    if resumed is None or not latencies:
        return None
    return (resumed - cleared) * 1000, (resumed - dropped.closed) * 1000, latencies[-1]


async def main(calls: int, filler_after: int | None, connect_delay: int) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    gaps, bounds, refs, missed = [], [], [], 0
    folder = tempfile.TemporaryDirectory()
    config = _filler_config(folder.name, filler_after) if filler_after is not None else None
    async with running_rig(config=config) as rig:
        for _ in range(calls):
            figures = await _one(rig, connect_delay / 1000)
            if figures is None:
                missed += 1
                continue
            gaps.append(figures[0])
            bounds.append(figures[1])
            refs.append(figures[2])
        ended = rig.calls.ended.values()
        reconnects = sum(c.counters.upstream_reconnects for c in ended)
        fillers = sum(c.counters.upstream_fillers for c in ended)
    folder.cleanup()
    print(f"realtime reconnect: {len(gaps)} forced drops measured ({missed} not), "
          f"{reconnects} reconnects recorded, {fillers} fillers played")  # fmt: skip
    if not gaps:
        return
    for name, values in (("gap heard", gaps), ("drop -> new audio", bounds),
                         ("reference: ordinary turn", refs)):  # fmt: skip
        print(f"  {name:26s} p50 {_pct(values, 50):7.1f} ms   p99 {_pct(values, 99):7.1f} ms"
              f"   mean {statistics.fmean(values):7.1f} ms")  # fmt: skip
    ratio = _pct(gaps, 50) / _pct(refs, 50)
    print(f"  gap heard / ordinary turn, p50: {ratio:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--filler-after", type=int, default=None, metavar="MS")
    parser.add_argument("--connect-delay", type=int, default=0, metavar="MS")
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.filler_after, args.connect_delay))
