"""Load and soak benchmark of realtime-passthrough: N concurrent simulated calls.

The fake Inworld Realtime server and the voiceagent server each run in their own subprocess;
the simulated Twilio callers run here. Latencies compare ``time.monotonic()`` stamps taken in
different processes, which is sound on Linux (CLOCK_MONOTONIC is system-wide):

- added latency: the fake records when it sent each audio delta, the caller when the matching
  ``media`` frame arrived (voiceagent forwards each delta as one frame, in order): when the
  callers' process read it (``voiceagent.sim.arrival``), and also when the caller's task got
  to it, later by the queueing of the callers' one event loop (an instrument's delay, given
  for comparison with runs before that stamp existed);
- append delay: the fake records when each ``input_audio_buffer.append`` arrived, the caller
  when it sent each 20 ms frame; the delay is counted from the frame holding the append's
  last byte, i.e. beyond the configured batching;
- frames lost: caller audio bytes sent vs audio bytes appended at the fake.

The added latency's headline p99 is taken after the ramp; it is also given by phase: while
calls start, while every call is up, and while calls end (every call hangs up within a few
seconds at the run's end, a burst of teardowns real traffic spreads out).

CPU is reported over the whole run and over the steady window (every call connected, none
ended), split into the serving thread and the records writer's threads. ``--pairs N`` runs
voiceagent and ``bare_bridge.py`` (the same wire work with none of voiceagent's logic) in turn,
N times each, and prints voiceagent's CPU as a multiple of the bare bridge's: on a shared VM
whose absolute figures move from hour to hour, that ratio is what voiceagent's code costs.

Usage::

    python benchmarks/realtime_load.py --calls 100 --seconds 60
    python benchmarks/realtime_load.py --pairs 3
    python benchmarks/realtime_load.py --soak --calls 2000 --concurrency 50
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from _proc import cpu_seconds, main_thread_cpu_seconds, status_kb, wait_healthy

from voiceagent.sim.media_caller import place_call
from voiceagent.sim.media_playback import MediaCallRecord as CallRecord
from voiceagent.sim.script import Drop, HangUp, Listen, Pause, Say, Step
from voiceagent.sim.webhooks import SimTarget

PUBLIC = "https://bench.example.test"
TOKEN = "bench-token"
API_KEY = "bench-inworld-key"
NUMBER = "+18005550101"
CONFIG = f"""
defaults:
  agent: {{greeting: "Hello, this is the benchmark."}}
numbers:
  "{NUMBER}": {{mode: realtime-passthrough}}
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_fake(args: argparse.Namespace, port: int) -> subprocess.Popen[str]:
    cmd = [
        sys.executable,
        "-m",
        "voiceagent.sim.fake_inworld_realtime",
        "--port",
        str(port),
        "--api-key",
        API_KEY,
        "--chunk-ms",
        str(args.chunk_ms),
        "--chunk-gap",
        str(args.chunk_gap),
        "--response-ms",
        str(args.response_ms),
    ]
    if not args.soak:
        cmd.append("--record-timing")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("ready"), line
    return proc


NO_RECORDS = (
    "from voiceagent.cli import configure_logging; from voiceagent.server import run; "
    "from voiceagent.settings import load_settings; s = load_settings(); "
    "configure_logging(s.log_level, s.log_format); run(s.model_copy(update={'database_url': ''}))"
)


BARE = str(Path(__file__).with_name("bare_bridge.py"))


def start_server(
    workdir: Path, port: int, fake_port: int, log_level: str, records: bool = True,
    bare: bool = False,
) -> subprocess.Popen[str]:  # fmt: skip
    config = workdir / "voiceagent.yaml"
    config.write_text(CONFIG)
    env = dict(
        os.environ,
        PUBLIC_URL=PUBLIC,
        TWILIO_AUTH_TOKEN=TOKEN,
        INWORLD_API_KEY=API_KEY,
        INWORLD_REALTIME_URL=f"ws://127.0.0.1:{fake_port}/api/v1/realtime/session",
        PORT=str(port),
        HOST="127.0.0.1",
        VOICEAGENT_CONFIG=str(config),
        LOG_LEVEL=log_level,
        REALTIME_SESSION_BUDGET="100000",  # the fake Inworld has no session cap
    )
    log = (workdir / "server.log").open("w")
    cmd = ["-m", "voiceagent", "serve"] if records else ["-c", NO_RECORDS]
    if bare:
        cmd = [BARE]
    return subprocess.Popen(
        [sys.executable, *cmd], cwd=workdir, env=env, stderr=log, stdout=log, text=True
    )


def start_profiler(pid: int, seconds: float, out: str) -> subprocess.Popen[bytes]:
    """py-spy (pip install py-spy) writing the server's collapsed stacks to ``out``."""
    cmd = [
        "py-spy",
        "record",
        "-p",
        str(pid),
        "-f",
        "raw",
        "-r",
        "200",
        "-d",
        str(int(seconds)),
        "-o",
        out,
        "--nonblocking",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def load_script(seconds: float) -> list[Step]:
    steps: list[Step] = [Listen(timeout_ms=5000)]
    cycles = max(1, int(seconds / 4.2))
    for i in range(cycles):
        steps += [Say(ms=1000, seed=i % 7 + 1), Listen(timeout_ms=4000), Pause(1000)]
    return [*steps, HangUp()]


async def fake_stats(fake_port: int) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{fake_port}/_fake/stats") as r,
    ):
        return dict(await r.json())


def analyse(records: list[CallRecord], stats: dict[str, Any]) -> dict[str, Any]:
    by_key = {s["key"]: s for s in stats["sessions"]}
    added: list[tuple[float, float]] = []  # (when, ms) to the caller's task reading it
    appends: list[tuple[float, float]] = []
    mismatched = 0
    sent_bytes = appended_bytes = 0
    for rec in records:
        session = next((s for k, s in by_key.items() if rec.call_sid in k), None)
        if session is None:
            continue
        sent_bytes += rec.frames_sent * 160
        appended_bytes += session["audio_bytes"]
        deltas = [t for r in session["responses"] for t in r["delta_times"]]
        if len(deltas) != len(rec.media_received):
            mismatched += 1
        added += [
            (sent, (got - sent) * 1000)
            for sent, (got, _) in zip(deltas, rec.media_received, strict=False)
        ]
        offset = 0
        for at, n in session["append_times"]:
            offset += n
            frame = min((offset - 1) // 160, len(rec.frame_times) - 1)
            appends.append((at, (at - rec.frame_times[frame]) * 1000))
    return {
        "added": added,
        "appends": appends,
        "mismatched": mismatched,
        "sent_bytes": sent_bytes,
        "appended_bytes": appended_bytes,
    }


def phase_windows(
    added: list[tuple[float, float]], records: list[CallRecord], steady_from: float
) -> dict[str, list[float]]:
    """Added latency (ms) by phase of the run: calls starting (the ramp, excluded from the
    headline), every call up, calls ending (the hang-ups of the run's end, a burst this
    benchmark makes: every call hangs up within the ramp's few seconds)."""
    first_end = min((r.ended_at for r in records if r.ended_at is not None), default=float("inf"))
    return {
        "calls starting": [ms for at, ms in added if at < steady_from],
        "all up": [ms for at, ms in added if steady_from <= at < first_end],
        "calls ending": [ms for at, ms in added if at >= max(first_end, steady_from)],
    }


def phases(windows: dict[str, list[float]]) -> str:
    """`phase_windows` as one line of p99s."""
    return "; ".join(f"{name} (n={len(v)}) p99 {pct(v, 99):.2f} ms" for name, v in windows.items())


class SteadyWindow:
    """Server CPU while every call is connected and none has ended: from one second after
    the ramp to ten seconds before the first call can end."""

    def __init__(self, pid: int, start: float, end: float) -> None:
        self.pid, self.start, self.end = pid, start, end
        self.cpu = self.main = self.seconds = 0.0

    async def measure(self) -> None:
        if self.end <= self.start:
            return
        await asyncio.sleep(max(0.0, self.start - time.monotonic()))
        cpu0, main0, t0 = cpu_seconds(self.pid), main_thread_cpu_seconds(self.pid), time.monotonic()
        await asyncio.sleep(max(0.0, self.end - t0))
        self.cpu = cpu_seconds(self.pid) - cpu0
        self.main = main_thread_cpu_seconds(self.pid) - main0
        self.seconds = time.monotonic() - t0


async def run_load(
    args: argparse.Namespace, target: SimTarget, pid: int, fake_port: int
) -> dict[str, float]:
    """One load run: prints its figures and returns the headline ones."""
    script = load_script(args.seconds)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        # warm-up call (imports, first connections), not measured
        await place_call(target, NUMBER, [Listen(), HangUp()], http=http)
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        fake_cpu0, own_cpu0 = cpu_seconds(args.fake_pid), time.process_time()
        spy = start_profiler(pid, args.seconds, args.profile) if args.profile else None
        window = SteadyWindow(pid, t0 + args.ramp + 1.0, t0 + args.seconds - 10.0)
        measuring = asyncio.create_task(window.measure())

        async def one(i: int) -> CallRecord:
            await asyncio.sleep(i * args.ramp / max(args.calls, 1))
            return await place_call(target, NUMBER, script, http=http, record_timing=True)

        records = await asyncio.gather(*(one(i) for i in range(args.calls)))
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        await measuring
        fake_cpu, own_cpu = cpu_seconds(args.fake_pid) - fake_cpu0, time.process_time() - own_cpu0
        if spy is not None:
            spy.wait(30)
    call_minutes = sum((r.ended_at or t1) - (r.started_at or t0) for r in records) / 60
    stats = await fake_stats(fake_port)
    result = analyse(records, stats)
    cpu = cpu1 - cpu0
    print(
        f"calls: {args.calls} concurrent, {args.seconds:.0f} s each; wall {t1 - t0:.1f} s; "
        f"{call_minutes:.1f} call-minutes"
    )
    print(f"server CPU: {cpu:.2f} s = {cpu / call_minutes:.3f} CPU-s per call-minute")
    steady_cpu = float("nan")
    if window.seconds > 0:
        steady_minutes = window.seconds * args.calls / 60
        steady_cpu, steady_main = window.cpu / steady_minutes, window.main / steady_minutes
        print(
            f"server CPU while all {args.calls} calls are up ({window.seconds:.0f} s): "
            f"{steady_cpu:.3f} CPU-s per call-minute, of which the serving thread "
            f"{steady_main:.3f} and other threads (the records writer) "
            f"{steady_cpu - steady_main:.3f}"
        )
    print(
        f"other processes: fake Inworld {fake_cpu / (t1 - t0):.0%} of a core, simulated "
        f"callers {own_cpu / (t1 - t0):.0%} of a core (2 cores in all)"
    )
    print(f"server peak RSS (VmHWM): {status_kb(pid, 'VmHWM') / 1024:.1f} MiB")
    steady_from = t0 + args.ramp + 1.0  # calls starting (webhooks, upgrades) are excluded
    for name, pairs in (
        ("added latency upstream delta -> Twilio media", result["added"]),
        ("append delay beyond batching", result["appends"]),
    ):
        every = [ms for _, ms in pairs]
        steady = [ms for at, ms in pairs if at >= steady_from]
        print(
            f"{name}: all (n={len(every)}) p50 {pct(every, 50):.2f} ms, p99 "
            f"{pct(every, 99):.2f} ms, max {max(every, default=0):.2f} ms; after the ramp "
            f"(n={len(steady)}) p50 {pct(steady, 50):.2f} ms, p99 {pct(steady, 99):.2f} ms"
        )
    windows = phase_windows(result["added"], records, steady_from)
    print(f"added latency by phase: {phases(windows)}")
    lost = (result["sent_bytes"] - result["appended_bytes"]) / 160
    print(
        f"frames lost: {lost:.0f} of {result['sent_bytes'] // 160} "
        f"(calls with delta/frame count mismatch: {result['mismatched']})"
    )
    heard = [r.greeting_latency_ms for r in records if r.greeting_latency_ms is not None]
    print(
        f"greeting heard after start: p50 {pct(heard, 50):.1f} ms, p99 {pct(heard, 99):.1f} ms;"
        f" warnings {sorted({w for r in records for w in r.warnings})}"
    )
    after_ramp = [ms for at, ms in result["added"] if at >= steady_from]
    return {
        "cpu": cpu / call_minutes, "steady": steady_cpu, "p99": pct(after_ramp, 99),
        "p99_up": pct(windows["all up"], 99),
    }  # fmt: skip


async def run_soak(args: argparse.Namespace, target: SimTarget, pid: int, fake_port: int) -> None:
    samples: list[tuple[float, int]] = []
    done = 0
    sem = asyncio.Semaphore(args.concurrency)
    t0 = time.monotonic()

    async def sample() -> None:
        while True:
            samples.append((time.monotonic() - t0, status_kb(pid, "VmRSS")))
            await asyncio.sleep(1.0)

    async def one(i: int, http: aiohttp.ClientSession) -> None:
        nonlocal done
        ending: Step = HangUp() if i % 2 else Drop()
        script: list[Step] = [Pause(200 + (i % 5) * 100), Say(ms=300, seed=i % 5 + 1), ending]
        async with sem:
            await place_call(target, NUMBER, script, http=http)
        done += 1

    sampler = asyncio.create_task(sample())
    cpu0 = cpu_seconds(pid)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        await asyncio.gather(*(one(i, http) for i in range(args.calls)))
    await asyncio.sleep(1.5)
    cpu = cpu_seconds(pid) - cpu0
    sampler.cancel()
    stats = await fake_stats(fake_port)
    async with aiohttp.ClientSession() as http, http.get(target.base_url + "/healthz") as r:
        health = await r.json()
    warm = [kb for t, kb in samples if t > (samples[-1][0] * 0.2)]
    print(f"soak: {done} calls ({args.concurrency} at a time) in {time.monotonic() - t0:.0f} s")
    print(f"server CPU: {cpu:.2f} s = {cpu / max(done, 1) * 1000:.1f} ms per call (about 1 s each)")
    print(
        "server RSS MiB over time: "
        + ", ".join(f"{t:.0f}s={kb / 1024:.1f}" for t, kb in samples[:: max(1, len(samples) // 12)])
    )
    if len(warm) > 1:
        per_call = (warm[-1] - warm[0]) * 1024 / max(1, done * 0.8)
        print(
            f"RSS slope after warm-up: {per_call / 1024:.2f} KiB per call (by design the "
            "in-memory call state keeps each call's plan reference for an hour and its outcome "
            "for 10 minutes, at most 100,000 calls; with REDIS_URL they live in Redis)"
        )
    if warm:
        print(
            f"after warm-up (last 80%): min {min(warm) / 1024:.1f} MiB, max "
            f"{max(warm) / 1024:.1f} MiB, first {warm[0] / 1024:.1f}, last {warm[-1] / 1024:.1f}"
        )
    print(
        f"fake open sessions at the end: {stats['open_sessions']} (must be 0); sessions "
        f"opened {len(stats['sessions'])}; server active calls {health['active_calls']}"
    )


async def run_once(args: argparse.Namespace, bare: bool = False) -> dict[str, float]:
    fake_port, port = free_port(), free_port()
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = args.workdir or tmp
        fake = start_fake(args, fake_port)
        args.fake_pid = fake.pid
        server = start_server(
            Path(tmp), port, fake_port, args.log_level, not args.no_records, bare=bare
        )
        try:
            target = SimTarget(f"http://127.0.0.1:{port}", PUBLIC, TOKEN)
            await wait_healthy(target.base_url)
            if args.soak:
                await run_soak(args, target, server.pid, fake_port)
            else:
                figures = await run_load(args, target, server.pid, fake_port)
        finally:
            server.terminate()
            server.wait(30)
            fake.terminate()
            fake.wait(10)
    return figures


async def run_pairs(args: argparse.Namespace) -> None:
    """voiceagent and the bare bridge in turn; voiceagent's CPU as a multiple of the bare's."""
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for i in range(args.pairs):
        for bare in (False, True):
            print(f"--- run {i + 1} of {args.pairs}: {'bare bridge' if bare else 'voiceagent'}")
            runs[bare].append(await run_once(args, bare=bare))
    print("--- summary (CPU-s per call-minute; ratio = voiceagent / bare bridge, run by run)")
    for key, what in (("cpu", "whole run"), ("steady", "all calls up")):
        ours, bare_runs = [r[key] for r in runs[False]], [r[key] for r in runs[True]]
        ratios = [a / b for a, b in zip(ours, bare_runs, strict=True)]
        print(
            f"{what}: voiceagent {', '.join(f'{v:.3f}' for v in ours)}; bare bridge "
            f"{', '.join(f'{v:.3f}' for v in bare_runs)}; ratio "
            f"{', '.join(f'{v:.2f}' for v in ratios)} (median {statistics.median(ratios):.2f})"
        )
    for key, what in (("p99", "after the ramp"), ("p99_up", "all calls up")):
        print(
            f"added latency p99 {what}: voiceagent "
            + ", ".join(f"{r[key]:.2f} ms" for r in runs[False])
            + "; bare bridge: "
            + ", ".join(f"{r[key]:.2f} ms" for r in runs[True])
        )


async def main_async(args: argparse.Namespace) -> None:
    if args.pairs:
        await run_pairs(args)
    else:
        await run_once(args, bare=args.bare)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=None, help="100 (load) / 2000 (soak)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--ramp",
        type=float,
        default=4.2,
        help="seconds over which calls start (one turn cycle: phases spread)",
    )
    parser.add_argument("--soak", action="store_true")
    parser.add_argument("--concurrency", type=int, default=50, help="soak: calls at a time")
    parser.add_argument("--chunk-ms", type=int, default=100, help="fake audio delta size")
    parser.add_argument("--chunk-gap", type=float, default=0.02)
    parser.add_argument("--response-ms", type=int, default=1200)
    parser.add_argument("--log-level", default="info")
    parser.add_argument(
        "--no-records",
        action="store_true",
        help="serve without the call/turn records store (isolates its cost)",
    )
    parser.add_argument("--bare", action="store_true", help="load bare_bridge.py instead")
    parser.add_argument(
        "--pairs", type=int, default=0, help="N runs each of voiceagent and the bare bridge"
    )
    parser.add_argument("--workdir", default="", help="keep the server's config and log here")
    parser.add_argument("--profile", default="", help="write py-spy collapsed stacks here")
    args = parser.parse_args()
    if args.calls is None:
        args.calls = 2000 if args.soak else 100
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    if not args.soak:  # the callers are the measuring instrument: no GC pauses in their stamps
        gc.disable()
    try:
        import uvloop

        uvloop.run(main_async(args))
    except ImportError:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
