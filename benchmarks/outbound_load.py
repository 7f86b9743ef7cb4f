"""Outbound load: N calls dialled at the CPS limit with a mix of outcomes, beside inbound calls.

The voiceagent server and the fake Inworld (Realtime, or the Router for ``--mode relay``) run
in their own subprocesses; the fake Twilio REST API and the callees it plays run here. Every
call goes through `POST /calls` (all of them at once: the server paces the creates at
OUTBOUND_CPS); the callees are a mix of people (AMD: human; a short conversation), answering
machines (the voicemail), phones nobody answers and busy lines.

Printed:

- accounting: dials accepted, creates Twilio got, calls ended at the callee, final statuses the
  server reports (`GET /calls/{sid}`), by outcome; every call must be accounted for;
- pacing: the gaps between consecutive creates at Twilio against 1/CPS (error p50/p99/max);
- CPU: the server's CPU seconds per call-minute (minutes of connected legs) during the
  outbound phase, and the same for inbound calls to a number of the same mode placed right
  after in the same run (the same person script), with the ratio.

Usage::

    python benchmarks/outbound_load.py                    # 200 calls at 10 CPS, realtime
    python benchmarks/outbound_load.py --mode relay --calls 100 --cps 5
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from _proc import cpu_seconds, start_fake_router, wait_healthy

from voiceagent.outbound.client import CallsClient, outcome_of
from voiceagent.sim.callee import Callee, CalleeRecord, Callees
from voiceagent.sim.caller import place_call
from voiceagent.sim.fake_twilio_rest import FakeTwilioRest
from voiceagent.sim.script import HangUp, Listen, Say
from voiceagent.sim.webhooks import SimTarget, new_sid

PUBLIC, TOKEN, API_KEY, ADMIN = ("https://bench.example.test", "bench-token", "bench-key",
                                 "bench-admin-token-0123456789abcdef0123")  # fmt: skip
OUT, IN = "+18005550141", "+18005550142"
MIX = (("person", 0.5), ("machine", 0.25), ("no-answer", 0.15), ("busy", 0.10))
SCRIPT = (Listen(), Say("Yes, that works for me.", ms=1500), Listen(), HangUp())


def config(mode: str) -> str:
    return f"""
defaults:
  agent: {{greeting: "Hi {{{{name}}}}, this is the benchmark clinic."}}
numbers:
  "{OUT}":
    mode: {mode}
    outbound:
      amd: true
      max_concurrent: 10000
      voicemail: {{action: leave_message, message: "Hi {{{{name}}}}, please call us back."}}
  "{IN}": {{mode: {mode}}}
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_fake_realtime(port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "voiceagent.sim.fake_inworld_realtime", "--port", str(port),
         "--api-key", API_KEY, "--response-ms", "1500"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().startswith("ready")
    return proc


def start_server(workdir: Path, port: int, upstream: dict[str, str], account: str,
                 twilio_url: str, args: argparse.Namespace) -> subprocess.Popen[str]:  # fmt: skip
    (workdir / "voiceagent.yaml").write_text(config(args.mode_name))
    env = dict(
        os.environ, PUBLIC_URL=PUBLIC, TWILIO_AUTH_TOKEN=TOKEN, INWORLD_API_KEY=API_KEY,
        PORT=str(port), HOST="127.0.0.1", VOICEAGENT_CONFIG=str(workdir / "voiceagent.yaml"),
        LOG_LEVEL="warning", REALTIME_SESSION_BUDGET="100000", ADMIN_TOKEN=ADMIN,
        TWILIO_ACCOUNT_SID=account, TWILIO_API_BASE_URL=twilio_url,
        OUTBOUND_CPS=str(args.cps), MAX_CONCURRENT_CALLS="100000",
        DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'records.sqlite3'}", **upstream,
    )  # fmt: skip
    log = (workdir / "server.log").open("w")
    return subprocess.Popen([sys.executable, "-m", "voiceagent", "serve"], cwd=workdir,
                            env=env, stderr=log, stdout=log, text=True)  # fmt: skip


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else 0.0


async def outbound_phase(
    args: argparse.Namespace, fake: FakeTwilioRest, target: SimTarget, pid: int
) -> tuple[dict[str, Any], float]:
    rng = random.Random(args.seed)
    kinds = rng.choices([k for k, _ in MIX], [w for _, w in MIX], k=args.calls)
    callees = {f"+1415555{i:04d}": Callee(kind, script=SCRIPT, hello_s=0.5,  # type: ignore[arg-type]
                                           greeting_s=1.5, no_answer_s=2.0)
               for i, kind in enumerate(kinds)}  # fmt: skip
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        player = Callees(fake, target, http, callees, speed=20.0, quiet_s=0.15)
        fake.player = player
        client = CallsClient(http, target.base_url, ADMIN)
        cpu0, started = cpu_seconds(pid), time.monotonic()
        placed = await asyncio.gather(*(client.place(OUT, to, {"name": f"P{i}"})
                                        for i, to in enumerate(callees)))  # fmt: skip
        sids = [p.call_sid for p in placed if p.call_sid]
        ended: list[CalleeRecord] = await asyncio.gather(
            *(player.wait(sid, within=args.calls / args.cps + 120) for sid in sids))  # fmt: skip
        await asyncio.sleep(1.0)  # the last status callbacks
        cpu = cpu_seconds(pid) - cpu0
        elapsed = time.monotonic() - started
        finals = await asyncio.gather(*(client.show(sid) for sid in sids))
    creates = [r.at for r in fake.received if r.path.endswith("/Calls.json") and r.method == "POST"]
    gaps = [b - a for a, b in itertools.pairwise(creates)]
    errors = [abs(g - 1 / args.cps) * 1000 for g in gaps]
    minutes = sum(rec.leg_seconds for rec in ended) / 60
    return {
        "dials": args.calls, "accepted": len(sids),
        "refused": Counter(p.error for p in placed if p.error),
        "creates": len(creates), "ended_at_callee": len(ended),
        "final": sum(1 for f in finals if f.get("final")), "expected": Counter(kinds),
        "outcomes": Counter(outcome_of(f) for f in finals),
        "pacing_ms": (pct(errors, 50), pct(errors, 99), max(errors, default=0.0)),
        "achieved_cps": (len(creates) - 1) / (creates[-1] - creates[0]) if len(creates) > 1 else 0,
        "cpu_s": cpu, "elapsed_s": elapsed, "call_minutes": minutes,
    }, (cpu / minutes if minutes else float("nan"))  # fmt: skip


async def inbound_phase(args: argparse.Namespace, target: SimTarget, pid: int, n: int) -> float:
    """``n`` inbound calls with the person script, started at the same CPS."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        cpu0 = cpu_seconds(pid)

        async def one(i: int) -> float:
            await asyncio.sleep(i / args.cps)
            started = time.monotonic()
            await place_call(target, IN, SCRIPT, call_sid=new_sid("CA"), http=http,
                             speed=20.0, quiet_s=0.15)  # fmt: skip
            return time.monotonic() - started

        seconds = await asyncio.gather(*(one(i) for i in range(n)))
        await asyncio.sleep(1.0)
        cpu = cpu_seconds(pid) - cpu0
    minutes = sum(seconds) / 60
    return cpu / minutes if minutes else float("nan")


async def main(args: argparse.Namespace) -> None:
    args.mode_name = "realtime-passthrough" if args.mode == "realtime" else "relay-router"
    workdir = Path(tempfile.mkdtemp(prefix="outbound-bench-"))
    port, procs = free_port(), []
    fake = FakeTwilioRest(auth_token=TOKEN, numbers=[OUT, IN],
                          url_map=lambda url: target.local(url))  # fmt: skip
    target = SimTarget(f"http://127.0.0.1:{port}", PUBLIC, TOKEN)
    await fake.start()
    try:
        if args.mode == "realtime":
            rt_port = free_port()
            procs.append(start_fake_realtime(rt_port))
            upstream = {"INWORLD_REALTIME_URL":
                        f"ws://127.0.0.1:{rt_port}/api/v1/realtime/session"}  # fmt: skip
        else:
            router, url = start_fake_router(API_KEY, 0.3, 0.2)
            procs.append(router)
            upstream = {"INWORLD_ROUTER_URL": url}
        server = start_server(workdir, port, upstream, fake.account_sid, fake.url, args)
        procs.append(server)
        await wait_healthy(target.base_url)
        out, out_cpu = await outbound_phase(args, fake, target, server.pid)
        persons = out["expected"]["person"] + out["expected"]["machine"]
        in_cpu = await inbound_phase(args, target, server.pid, max(1, persons))
    finally:
        for proc in procs:
            proc.terminate()
        await fake.close()
    print(f"outbound_load: {args.calls} calls at {args.cps} CPS, mode {args.mode_name}")
    print(
        f"  dials accepted {out['accepted']}/{out['dials']} (refused {dict(out['refused'])}); "
        f"creates at Twilio {out['creates']}; ended at the callee {out['ended_at_callee']}; "
        f"final status at the server {out['final']}"
    )
    print(f"  expected {dict(sorted(out['expected'].items()))}")
    print(f"  outcomes {dict(sorted(out['outcomes'].items()))}")
    accounted = out["final"] == out["creates"] == out["dials"]
    print(f"  every call accounted for: {'yes' if accounted else 'NO'}")
    p50, p99, worst = out["pacing_ms"]
    print(
        f"  pacing: achieved {out['achieved_cps']:.2f} CPS; |gap - 1/CPS| p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms, max {worst:.1f} ms"
    )
    print(
        f"  CPU per call-minute: outbound {out_cpu:.2f} s ({out['call_minutes']:.1f} "
        f"call-min, {out['cpu_s']:.1f} CPU-s incl. dialling and callbacks); inbound "
        f"{in_cpu:.2f} s; outbound / inbound {out_cpu / in_cpu:.2f}"
    )
    print(f"  server log: {workdir / 'server.log'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--cps", type=float, default=10.0)
    parser.add_argument("--mode", choices=("realtime", "relay"), default="realtime")
    parser.add_argument("--seed", type=int, default=27)
    asyncio.run(main(parser.parse_args()))
