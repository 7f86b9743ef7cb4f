"""Scale-out benchmark: voiceagent instances behind HAProxy (deploy/haproxy.cfg), sharing Redis
and PostgreSQL (records on), under concurrent calls of both modes.

Three phases in one run: one instance alone behind the balancer (both of its server lines name
the one instance) with all the calls, then two fresh instances with the same calls, then one
instance with half of them, i.e. the load each of the two carried. A busier event loop spends
less CPU per call (more events per wakeup), so the third phase is what tells the cost of the
topology itself (shared state, cross-instance fetches) apart from that economy of scale. The
fake Inworld Realtime and the fake Router run in their own processes, the simulated Twilio
callers here, and every request goes through HAProxy (leastconn by default, `--balance
roundrobin` too; no stickiness: one call's requests may land on different instances).

- frames lost: caller audio bytes sent vs bytes the fake Realtime received (realtime calls);
- clip fetch failures: relay `play` clips that did not fetch as a valid WAV (and HAProxy's
  non-200 answers to /audio/);
- added latency (realtime): fake's audio delta sent -> caller's media frame read
  (`realtime_load.py`'s measure, now through the balancer), after the ramp; also to when the
  caller's task got to it (the callers' own queueing added);
- relay overhead: prompt -> first `play` minus the Router's request -> first audio;
- CPU-s per call-minute per instance: an instance's CPU over the call-minutes of the streams
  it carried (webhooks, callbacks and clip fetches of other calls come on top).

Targets (issue 11): 0 frames lost, 0 clip fetch failures, CPU per call-minute per instance no
worse than one instance alone, added latency p99 < 2 ms with records on. The run ends with a
verdict on each, judged on the two-instance phase; the CPU is set against one instance
carrying all the calls and against one carrying the same half.

`--bare` runs the same phases with `bare_bridge.py` instances (realtime calls only): how much
of the one-to-two difference any aiohttp bridge shows on the same machine.

    .venv/bin/python benchmarks/multi_instance.py [--calls 100 --seconds 40]
    .venv/bin/python benchmarks/multi_instance.py --modes realtime; ... --bare
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from _proc import cpu_seconds, start_fake_router, wait_healthy
from realtime_load import (
    BARE,
    analyse,
    fake_stats,
    free_port,
    load_script,
    pct,
    phase_windows,
    phases,
    start_fake,
)
from sqlalchemy import text

from voiceagent.sim.caller import place_call
from voiceagent.sim.script import Listen, Pause, Say, Step
from voiceagent.sim.webhooks import SimTarget
from voiceagent.store.records.schema import make_engine

ROOT = Path(__file__).resolve().parents[1]
PUBLIC, TOKEN, KEY = "https://bench.example.test", "bench-token", "bench-inworld-key"
REALTIME, RELAY = "+18005550101", "+18005550102"
CONFIG = f"""
defaults:
  agent: {{instructions: "Be brief.", greeting: "Hello, this is the benchmark."}}
numbers:
  "{REALTIME}": {{mode: realtime-passthrough}}
  "{RELAY}": {{mode: relay-router}}
"""
PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass
class Call:
    record: Any
    mode: str
    began: float
    ended: float


@dataclass
class Phase:
    name: str
    instances: dict[str, subprocess.Popen[bytes]]
    logs: dict[str, Path]
    calls: list[Call] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    lb_pid: int = 0
    lb_cpu: float = 0.0
    t0: float = 0.0
    wall: float = 0.0


@dataclass(frozen=True)
class Figures:
    """What the targets are judged on, for one phase."""

    lost: int
    clip_failures: int  # as the callers saw them
    audio_errors: int  # HAProxy's non-200 answers on /audio/
    p99_ms: float  # added latency after the ramp
    cpu_per_min: dict[str, float]  # per instance


# -- processes ------------------------------------------------------------------------------
def start_instance(
    env: dict[str, str], port: int, log: Path, bare: bool
) -> subprocess.Popen[bytes]:
    cmd = [BARE] if bare else ["-m", "voiceagent", "serve"]
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, *cmd], cwd=log.parent,
            env=env | {"PORT": str(port)}, stdout=subprocess.DEVNULL, stderr=out,
        )  # fmt: skip


def start_lb(
    ports: list[int], lb_port: int, workdir: Path, balance: str
) -> subprocess.Popen[bytes]:
    haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if haproxy is None:
        raise SystemExit("haproxy is not installed (apt-get install haproxy)")
    servers = {"VOICEAGENT_APP1": f"127.0.0.1:{ports[0]}",
               "VOICEAGENT_APP2": f"127.0.0.1:{ports[-1]}"}  # fmt: skip
    env = dict(os.environ, VOICEAGENT_LB_BIND=f"127.0.0.1:{lb_port}", VOICEAGENT_LB_BALANCE=balance,
               VOICEAGENT_LB_STATS=f"127.0.0.1:{free_port()}", **servers)  # fmt: skip
    with (workdir / "haproxy.log").open("ab") as out:
        return subprocess.Popen(
            [haproxy, "-db", "-f", str(ROOT / "deploy" / "haproxy.cfg")], env=env,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def own_redis_db() -> str:
    """An empty Redis database number (TEST_REDIS_URL's server), claimed with a lock key."""
    from redis import Redis

    parts = urlsplit(REDIS_URL)
    for db in range(15, 0, -1):
        url = urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))
        with Redis.from_url(url) as client:
            if client.dbsize() == 0 and client.set("voiceagent-bench:lock", 1, nx=True, ex=3600):
                return url
    raise SystemExit(f"no free Redis database at {REDIS_URL}")


def flush_redis(url: str) -> None:
    from redis import Redis

    with Redis.from_url(url) as client:
        client.flushdb()


async def pg(sql: str) -> None:
    """Run `sql` outside a transaction (CREATE / DROP DATABASE) on TEST_DATABASE_URL's server."""
    engine = make_engine(PG_URL)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


# -- load -----------------------------------------------------------------------------------
def relay_script(i: int, seconds: float) -> list[Step]:
    steps: list[Step] = [Listen()]
    for t in range(max(1, int(seconds / 5.0))):
        steps += [Say(f"Call {i} question {t}?"), Listen(), Pause(1000)]
    return steps


async def run_calls(
    phase: Phase, base: str, args: argparse.Namespace, calls: int, instances: list[str]
) -> None:
    target = SimTarget(base, PUBLIC, TOKEN)
    rt_script = load_script(args.seconds)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        # Warm-up (imports, first connections, first clip): a call of each mode on every
        # instance, straight to it, so that no phase counts an instance's first calls.
        for instance in instances:
            for number in (REALTIME,) if args.bare else (REALTIME, RELAY):
                warm = SimTarget(instance, PUBLIC, TOKEN)
                await place_call(warm, number, [Listen(), Say("Hi."), Listen()], http=http)
        cpu0 = {n: cpu_seconds(p.pid) for n, p in phase.instances.items()}
        lb_cpu0 = cpu_seconds(phase.lb_pid)
        phase.t0 = t0 = time.monotonic()

        async def one(i: int) -> Call:
            await asyncio.sleep(i * args.ramp / calls)
            began = time.monotonic()
            if args.modes == "realtime" or (args.modes == "both" and i % 2 == 0):
                rec = await place_call(target, REALTIME, rt_script, http=http, record_timing=True)
                return Call(rec, "realtime", began, time.monotonic())
            rec = await place_call(target, RELAY, relay_script(i, args.seconds), http=http,
                                   speed=1.0, quiet_s=0.2)  # fmt: skip
            return Call(rec, "relay", began, time.monotonic())

        phase.calls = list(await asyncio.gather(*(one(i) for i in range(calls))))
        phase.wall = time.monotonic() - t0
        phase.cpu = {n: cpu_seconds(p.pid) - cpu0[n] for n, p in phase.instances.items()}
        phase.lb_cpu = cpu_seconds(phase.lb_pid) - lb_cpu0


# -- figures --------------------------------------------------------------------------------
def streams_by_instance(phase: Phase) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for name, log in phase.logs.items():
        sids = found.setdefault(name, set())
        for line in log.read_text(errors="replace").splitlines():
            if '"stream_started"' in line:
                sids.add(str(json.loads(line).get("call_sid")))
    return found


def relay_overheads(calls: list[Call], rows: list[dict[str, Any]]) -> tuple[list[float], int]:
    by_prompt = {r["messages"][-1]["content"]: r for r in rows if r["messages"]}
    overhead: list[float] = []
    failures = 0
    for call in calls:
        for turn in call.record.turns:
            failures += sum(1 for c in turn.clips if not c.valid)
            row = by_prompt.get(turn.prompt or "")
            if row is None or turn.first_play_at is None or row["first_audio"] is None:
                continue
            router_ms = (row["first_audio"] - row["received"]) * 1000
            overhead.append((turn.first_play_at - turn.sent_at) * 1000 - router_ms)
    return overhead, failures


def report(
    phase: Phase, stats: dict[str, Any], rows: list[dict[str, Any]], lb_log: Path,
    args: argparse.Namespace,
) -> Figures:  # fmt: skip
    realtime = [c for c in phase.calls if c.mode == "realtime"]
    relay = [c for c in phase.calls if c.mode == "relay"]
    result = analyse([c.record for c in realtime], stats)
    lost = (result["sent_bytes"] - result["appended_bytes"]) // 160
    steady_from = phase.t0 + args.ramp + 1.0  # calls starting (webhooks, upgrades) excluded
    every = [ms for _at, ms in result["added"]]
    steady = [ms for at, ms in result["added"] if at >= steady_from]
    overhead, clip_failures = relay_overheads(relay, rows)
    audio_errors = sum(1 for line in lb_log.read_text().splitlines()
                       if "/audio/" in line and " 200 " not in line)  # fmt: skip
    minutes = {c.record.call_sid: (c.ended - c.began) / 60 for c in phase.calls}
    total_minutes = sum(minutes.values())
    print(f"\n== {phase.name}: {len(phase.calls)} calls ({len(realtime)} realtime, "
          f"{len(relay)} relay), {total_minutes:.1f} call-minutes, wall {phase.wall:.1f} s, "
          f"HAProxy CPU {phase.lb_cpu:.2f} s")  # fmt: skip
    print(f"  frames lost: {lost} of {result['sent_bytes'] // 160} "
          f"(realtime calls with delta/frame mismatch: {result['mismatched']})")  # fmt: skip
    print(f"  clip fetch failures: {clip_failures} (HAProxy non-200 on /audio/: {audio_errors})")
    print(f"  added latency delta -> media, all (n={len(every)}): p50 {pct(every, 50):.2f} ms, "
          f"p99 {pct(every, 99):.2f} ms, max {max(every, default=0):.2f} ms")  # fmt: skip
    print(f"  ... after the ramp (n={len(steady)}): p50 {pct(steady, 50):.2f} ms, "
          f"p99 {pct(steady, 99):.2f} ms")  # fmt: skip
    windows = phase_windows(result["added"], [c.record for c in realtime], steady_from)
    print(f"  ... by phase: {phases(windows)}")
    print(f"  relay overhead (n={len(overhead)}): p50 {pct(overhead, 50):.2f} ms, "
          f"p99 {pct(overhead, 99):.2f} ms")  # fmt: skip
    streams = streams_by_instance(phase)
    per_instance: dict[str, float] = {}
    for name, cpu in phase.cpu.items():
        own = sum(minutes.get(sid, 0.0) for sid in streams.get(name, ()))
        per_instance[name] = per = cpu / own if own else float("nan")
        print(f"  {name}: CPU {cpu:.2f} s, streams of {own:.1f} call-minutes -> "
              f"{per:.3f} CPU-s per call-minute")  # fmt: skip
    print(f"  all instances: {sum(phase.cpu.values()) / total_minutes:.3f} CPU-s per call-minute")
    return Figures(lost, clip_failures, audio_errors, pct(steady, 99), per_instance)


def verdict(one: Figures, two: Figures, half: Figures) -> list[str]:
    """Issue 11's targets, judged on the two-instance phase; the CPU against both baselines."""
    per = list(two.cpu_per_min.values())
    worst = math.nan if any(math.isnan(v) for v in per) else max(per)  # no streams: no figure
    alone = next(iter(one.cpu_per_min.values()))
    same_load = next(iter(half.cpu_per_min.values()))
    ok = {True: "met", False: "NOT met"}
    return [
        f"  frames lost: {two.lost} -> {ok[two.lost == 0]}",
        f"  clip fetch failures: {two.clip_failures} (HAProxy non-200 on /audio/: "
        f"{two.audio_errors}) -> {ok[two.clip_failures == two.audio_errors == 0]}",
        f"  CPU per call-minute per instance: worst {worst:.3f} vs one instance alone "
        f"{alone:.3f} ({worst / alone - 1:+.0%}) -> {ok[worst <= alone]}; vs one instance "
        f"carrying the same half {same_load:.3f} ({worst / same_load - 1:+.0%})",
        f"  added latency p99 after the ramp: {two.p99_ms:.2f} ms -> {ok[two.p99_ms < 2.0]}"
        if not math.isnan(two.p99_ms)
        else "  added latency: no realtime calls",
    ]


async def records_count(database_url: str) -> tuple[int, int]:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            calls = (await conn.execute(text("SELECT count(*) FROM calls"))).scalar_one()
            turns = (await conn.execute(text("SELECT count(*) FROM turns"))).scalar_one()
    finally:
        await engine.dispose()
    return int(calls), int(turns)


# -- run ------------------------------------------------------------------------------------
async def phase_run(name: str, n: int, calls: int, env: dict[str, str], workdir: Path,
                    args: argparse.Namespace, router_url: str) -> Figures:  # fmt: skip
    ports = [free_port() for _ in range(n)]
    tags = [f"{name}-{i + 1}" for i in range(n)]
    logs = {t: workdir / f"{t}.log" for t in tags}
    procs = {
        t: start_instance(env, p, logs[t], args.bare) for t, p in zip(tags, ports, strict=True)
    }
    lb_port = free_port()
    lb = start_lb(ports, lb_port, workdir, args.balance)
    title = f"{n} instance{'s' if n > 1 else ''} behind HAProxy ({args.balance})"
    phase = Phase(title, procs, logs, lb_pid=lb.pid)
    try:
        for port in ports:
            await wait_healthy(f"http://127.0.0.1:{port}")
        await wait_healthy(f"http://127.0.0.1:{lb_port}")
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        await run_calls(phase, f"http://127.0.0.1:{lb_port}", args, calls, bases)
        async with (
            aiohttp.ClientSession() as http,
            http.get(router_url.replace("/v1/chat/completions", "/_records")) as resp,
        ):
            rows = await resp.json()
        return report(phase, await fake_stats(args.fake_port), rows, workdir / "haproxy.log", args)
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(60)
        lb.terminate()
        lb.wait(10)
        (workdir / "haproxy.log").rename(workdir / f"haproxy-{name}.log")


async def main_async(args: argparse.Namespace) -> None:
    redis_url = own_redis_db()
    db_name = f"bench_{uuid.uuid4().hex[:10]}"
    await pg(f'CREATE DATABASE "{db_name}"')
    parts = urlsplit(PG_URL)
    path = f"/{db_name}"
    database_url = urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))
    args.fake_port = free_port()
    fake = start_fake(args, args.fake_port)
    router, router_url = start_fake_router(KEY, args.ttfb, args.sentence)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(args.workdir or tmp)
            (workdir / "voiceagent.yaml").write_text(CONFIG)
            env = dict(
                os.environ, PUBLIC_URL=PUBLIC, TWILIO_AUTH_TOKEN=TOKEN, INWORLD_API_KEY=KEY,
                INWORLD_REALTIME_URL=f"ws://127.0.0.1:{args.fake_port}/api/v1/realtime/session",
                INWORLD_ROUTER_URL=router_url, REDIS_URL=redis_url, DATABASE_URL=database_url,
                HOST="127.0.0.1", VOICEAGENT_CONFIG=str(workdir / "voiceagent.yaml"),
                LOG_LEVEL="info", REALTIME_SESSION_BUDGET=str(args.calls * 2),
            )  # fmt: skip
            half = args.calls // 2
            one = await phase_run("one", 1, args.calls, env, workdir, args, router_url)
            two = await phase_run("two", 2, args.calls, env, workdir, args, router_url)
            same = await phase_run("half", 1, half, env, workdir, args, router_url)
            if not args.bare:
                calls, turns = await records_count(database_url)
                print(f"\nrecords in PostgreSQL: {calls} calls, {turns} turns "
                      f"(placed {2 * args.calls + half + 8} calls, warm-ups included: two "
                      f"per instance)")  # fmt: skip
            print("\ntargets (issue 11), on the two-instance phase:")
            print("\n".join(verdict(one, two, same)))
    finally:
        for proc in (fake, router):
            proc.terminate()
            proc.wait(10)
        flush_redis(redis_url)
        await pg(f'DROP DATABASE "{db_name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=100, help="concurrent calls, half per mode")
    parser.add_argument("--seconds", type=float, default=40.0, help="length of each call")
    parser.add_argument("--modes", choices=("both", "realtime", "relay"), default="both",
                        help="both: half the calls per mode")  # fmt: skip
    parser.add_argument("--balance", choices=("leastconn", "roundrobin"), default="leastconn",
                        help="HAProxy's algorithm (deploy/haproxy.cfg's default)")  # fmt: skip
    parser.add_argument("--ramp", type=float, default=4.2, help="seconds over which calls start")
    parser.add_argument("--ttfb", type=float, default=0.25, help="fake Router s to first byte")
    parser.add_argument("--sentence", type=float, default=0.4, help="fake Router s per sentence")
    parser.add_argument("--bare", action="store_true",
                        help="bare_bridge.py instances instead of voiceagent (realtime calls "
                             "only): the same phases with none of voiceagent's logic")  # fmt: skip
    parser.add_argument("--workdir", default="", help="keep logs (instances, HAProxy) here")
    args = parser.parse_args()
    if args.bare:
        args.modes = "realtime"
    # what realtime_load.start_fake reads
    args.chunk_ms, args.chunk_gap, args.response_ms, args.soak = 100, 0.02, 1200, False
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    gc.disable()  # the callers are the measuring instrument: no GC pauses in their stamps
    try:
        import uvloop

        uvloop.run(main_async(args))
    except ImportError:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
