"""`voiceagent simulate`: the offline rehearsal. No accounts, no network.

Starts the real server (create_app) on 127.0.0.1 against the fake Inworld Realtime and the
fake Router of this package, on a config (`--config`, default the sample A/B config
`rehearsal.yaml`), places N simulated Twilio callers (Media Streams or ConversationRelay,
whichever TwiML the server answers) to every configured number and every arm of every
experiment (or `--number`), with `--tools` also the tool scenarios of each number with tools
(`rehearsal_plan.py`: each HTTP tool's answer, each transfer destination, the agent ending the
call), warns first about what it cannot rehearse, prints what each caller heard with its
latencies and how each call ended, then the A/B report from the call records.

Fake delays default to assumptions from public figures (see `--help`); they are the
upstream's share of the latency, so the report shows what the modes add on top of them.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import select

from voiceagent.app import create_app
from voiceagent.config import load_config
from voiceagent.errors import ConfigError
from voiceagent.logging import configure_logging
from voiceagent.report.command import load_report
from voiceagent.report.page import html_report
from voiceagent.report.render import render
from voiceagent.settings import Settings, load_settings
from voiceagent.sim.caller import place_call
from voiceagent.sim.fake_inworld_realtime import FakeInworldRealtime
from voiceagent.sim.fake_options import FakeRealtimeOptions
from voiceagent.sim.fake_router import FakeRouter
from voiceagent.sim.hooks_receiver import HooksReceiver
from voiceagent.sim.hooks_rehearsal import hooks_call, hooks_number
from voiceagent.sim.outbound_rehearsal import OutboundRehearsal, print_outbound
from voiceagent.sim.rehearsal_plan import Scenario, capacity_warning, plan_rehearsal
from voiceagent.sim.script import HangUp, Listen, Pause, Say, Step
from voiceagent.sim.tool_rehearsal import (
    Endings,
    check_http_tools,
    rehearsal_config,
    scenario_script,
)
from voiceagent.sim.tool_server import ToolServer
from voiceagent.sim.webhooks import SimTarget
from voiceagent.store.records.schema import make_engine, turns
from voiceagent.web.keys import SERVICES

SAMPLE = Path(__file__).with_name("rehearsal.yaml")
PUBLIC_URL = "https://rehearsal.voiceagent.invalid"


@dataclass
class CallLine:
    """One finished simulated call, as printed."""

    call_sid: str
    number: str
    protocol: str
    heard_s: float
    barge_ins: int
    note: str = ""  # the tool scenario, and how the call ended


def call_script() -> list[Step]:
    """Greeting, two questions, a barge-in mid-reply, one more question, hang up (the same
    steps in both protocols: audio on Media Streams, prompts on ConversationRelay)."""
    return [
        Listen(), Say("What are your opening hours?", ms=900, seed=1), Listen(),
        Say("Can I pay by card?", ms=700, seed=2), Listen("playing", min_heard_ms=400),
        Say("Sorry, one more thing: do you deliver?", ms=600, seed=3), Listen(), Pause(200),
        HangUp(),
    ]  # fmt: skip


async def _one_call(
    http: aiohttp.ClientSession, base: str, token: str, to: str, sid: str,
    script: list[Step] | None = None,
) -> CallLine:  # fmt: skip
    target = SimTarget(base, PUBLIC_URL, token)
    rec = await place_call(target, to, script or call_script(), call_sid=sid, http=http)
    protocol = rec.protocol or f"refused ({rec.webhook_status})"
    return CallLine(sid, to, protocol, rec.heard_ms / 1000, rec.barge_ins)


# The per-call lines use the report's own figures (the server's turn records), named here.
DEFINITIONS = (
    "latency per call, as the report defines it (docs/ab-testing.md): greeting = call "
    "answered -> first agent audio handed to Twilio; response = caller's turn end known to "
    "the server (realtime: Inworld speech_stopped; relay: final prompt) -> first agent audio "
    "handed to Twilio"
)


@dataclass
class Recorded:
    """One call's turns as the server recorded them: (caller, agent) texts and figures."""

    texts: list[tuple[str, str]] = field(default_factory=list)
    greeting_ms: float | None = None
    response_ms: list[float] = field(default_factory=list)


async def _recorded(db_url: str) -> dict[str, Recorded]:
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(turns.c.call_sid, turns.c.kind, turns.c.user_text, turns.c.agent_text,
                       turns.c.response_ms)
                .order_by(turns.c.call_sid, turns.c.turn_index))  # fmt: skip
            out: dict[str, Recorded] = {}
            for sid, kind, user, agent, response in rows:
                call = out.setdefault(sid, Recorded())
                call.texts.append(("" if kind == "greeting" else user or "", agent or ""))
                if kind == "greeting" and call.greeting_ms is None:
                    call.greeting_ms = response
                elif kind != "greeting" and response is not None:
                    call.response_ms.append(response)
            return out
    finally:
        await engine.dispose()


async def rehearse(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        plan = plan_rehearsal(config, args.number, args.calls, args.tools,
                              random.Random(args.seed))  # fmt: skip
    except (ConfigError, ValueError) as exc:
        print(f"voiceagent simulate: {exc}", file=sys.stderr)
        return 2
    budget = _session_budget()
    await check_http_tools(plan)
    token = secrets.token_hex(16)
    workdir = Path(tempfile.mkdtemp(prefix="voiceagent-sim-"))
    db_url = f"sqlite+aiosqlite:///{workdir / 'records.sqlite3'}"
    said: dict[str, tuple[str, ...]] = {sid: (s.said,) for _, sid, s in plan.scenarios}
    rt_opts = FakeRealtimeOptions(
        api_key="sim-key", first_delta_delay_s=args.realtime_first_audio_ms / 1000,
        tool_calls=plan.scripts, call_transcripts=said,
    )  # fmt: skip
    receiver = await HooksReceiver(token).start()
    outbound = OutboundRehearsal(token)  # the fake Twilio REST API, before the app
    outbound_settings = await outbound.start() if args.outbound else {}
    async with FakeInworldRealtime(rt_opts) as realtime, ToolServer() as tool_server:
        router = FakeRouter(api_key="sim-key", ttfb_s=args.router_ttfb_ms / 1000,
                            sentence_s=args.router_sentence_ms / 1000,
                            tool_calls=plan.scripts)  # fmt: skip
        await router.start()
        config = rehearsal_config(args.config, tool_server.base_url, receiver.base_url)
        settings = Settings(
            public_url=PUBLIC_URL, twilio_auth_token=token, inworld_api_key="sim-key",
            inworld_realtime_url=realtime.url, inworld_router_url=router.url,
            config_path=args.config, database_url=db_url, port=0,
            realtime_session_budget=budget, **outbound_settings,
            webhook_signing_secret=token, webhook_poll_seconds=0.2,
        )  # fmt: skip
        runner = web.AppRunner(create_app(settings, config), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        base = f"http://127.0.0.1:{port}"
        services = runner.app[SERVICES]
        plan.keep_playable(config, services.modes)
        if warning := capacity_warning(config, plan, args.concurrency, budget, services.modes):
            plan.warnings.append(warning)
        _print_warnings(plan.warnings, args.config)
        endings = services.sink = Endings(services.sink)
        lines = await _place_all(base, token, plan.calls, args.concurrency)
        lines += await _place_scenarios(base, token, plan.scenarios)
        hooks_lines: list[str] = []
        if (hooked := hooks_number(config)) is not None:
            hooks_lines = await hooks_call(SimTarget(base, PUBLIC_URL, token), receiver, hooked)
        target = SimTarget(base, PUBLIC_URL, token)
        out_lines = await outbound.place(config, target) if args.outbound else []
        await runner.cleanup()  # flushes the call records
        await router.close()
    await receiver.stop()
    await outbound.close()
    _note_endings(lines, endings)
    recorded = await _recorded(db_url)
    _print_calls(lines, recorded, args.transcripts or len(plan.calls) <= 8)
    print("\n".join(hooks_lines))
    print_outbound(out_lines, {sid: call.texts for sid, call in recorded.items()})
    print("\n" + render(await load_report(db_url, config=config)))
    if plan.warnings:
        print(f"\nnot rehearsed: {len(plan.warnings)} (listed at the top)")
    print(f"\nrecords: {db_url}")
    page = await html_report(db_url, config=config, source=db_url, simulated=True)
    report = workdir / "report.html"  # next to the records; its path is the last line
    await asyncio.to_thread(report.write_text, page, encoding="utf-8")
    print(f"report (open it in a browser):\n{report}")
    return 0


def _session_budget() -> int:
    """REALTIME_SESSION_BUDGET as the settings (.env, environment) give it, else its default."""
    try:
        return load_settings().realtime_session_budget
    except ConfigError:
        return Settings().realtime_session_budget


def _print_warnings(warnings: list[str], path: Path) -> None:
    """What the rehearsal of this config leaves out, before any call."""
    if not warnings:
        return
    print(f"not rehearsed ({path}):")
    for warning in warnings:
        print(f"  - {warning}")


def _note_endings(lines: list[CallLine], endings: Endings) -> None:
    """Each call's line says which tools ran and how the call ended (after its scenario)."""
    for line in lines:
        ending = endings.calls.get(line.call_sid, "")
        line.note = f"{line.note}: {ending}" if line.note else ending


async def _place_scenarios(
    base: str, token: str, scenarios: list[tuple[str, str, Scenario]]
) -> list[CallLine]:
    """Every tool scenario (its number, CallSid and words), all at once."""

    async def run(to: str, sid: str, scenario: Scenario) -> CallLine:
        line = await _one_call(http, base, token, to, sid, scenario_script(scenario))
        line.note = scenario.name
        return line

    async with aiohttp.ClientSession() as http:
        return list(await asyncio.gather(*(run(*s) for s in scenarios)))


async def _place_all(
    base: str, token: str, calls: list[tuple[str, str]], concurrency: int
) -> list[CallLine]:
    n = len(calls)
    gate = asyncio.Semaphore(concurrency)
    done: list[CallLine] = []
    started = time.monotonic()

    async def run(i: int) -> None:
        async with gate:
            to, sid = calls[i]
            done.append(await _one_call(http, base, token, to, sid))
            print(
                f"\r  calls finished: {len(done)}/{n} ({time.monotonic() - started:4.1f} s)",
                end="",
                file=sys.stderr,
                flush=True,
            )

    async with aiohttp.ClientSession() as http, asyncio.TaskGroup() as tg:
        for i in range(n):
            tg.create_task(run(i))
    print(file=sys.stderr)
    return done


def _print_calls(lines: list[CallLine], recorded: dict[str, Recorded], transcripts: bool) -> None:
    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f} ms"

    print(DEFINITIONS)
    for line in sorted(lines, key=lambda c: (c.number, c.protocol)):
        call = recorded.get(line.call_sid, Recorded())
        print(f"\n{line.number}  {line.protocol:18}  {line.call_sid}")
        print(f"  greeting {fmt(call.greeting_ms)}; response "
              f"{', '.join(fmt(t) for t in call.response_ms) or '-'}; heard "
              f"{line.heard_s:.1f} s of agent audio; barge-ins {line.barge_ins}")  # fmt: skip
        if line.note:
            print(f"  {line.note}")
        for user, agent in call.texts if transcripts else []:
            if user:
                print(f"    caller: {user}")
            print(f"    agent: {agent.strip() or '(nothing)'}")


def add_parser(sub: Any) -> None:
    """Register `voiceagent simulate` on the CLI."""
    p = sub.add_parser("simulate", help="offline rehearsal against fake Inworld + simulated Twilio")
    p.add_argument("--calls", type=int, default=40, help="simulated callers (default 40)")
    p.add_argument("--concurrency", type=int, default=40, help="calls at once (default 40)")
    p.add_argument(
        "--config",
        type=Path,
        default=SAMPLE,
        help="per-number YAML to rehearse (default: the sample A/B config)",
    )
    p.add_argument(
        "--number",
        action="append",
        metavar="E164",
        help="call only this number (repeatable; default: every configured one)",
    )
    p.add_argument("--realtime-first-audio-ms", type=float, default=450.0,
                   help="fake Realtime: end of speech to first audio (LLM TTFT ~300 ms + "
                        "TTS first audio ~150 ms, public figures)")  # fmt: skip
    p.add_argument(
        "--router-ttfb-ms",
        type=float,
        default=450.0,
        help="fake Router: request to first SSE audio (same assumption)",
    )
    p.add_argument(
        "--router-sentence-ms",
        type=float,
        default=250.0,
        help="fake Router: synthesis time of each further sentence",
    )
    p.add_argument(
        "--transcripts",
        action="store_true",
        help="print every call's dialogue (default: only with 8 calls or fewer)",
    )
    p.add_argument("--seed", type=int, default=None, help="reproducible CallSids (and arms)")
    p.add_argument("--tools", action=argparse.BooleanOptionalAction, default=True,
                   help="also rehearse the tools (default): for each number with tools a caller "
                        "per HTTP tool, one per transfer destination, one whose call the agent "
                        "ends; --no-tools leaves them out")  # fmt: skip
    p.add_argument(
        "--outbound",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also place outbound calls (default) from the sample outbound numbers: "
        "to a person, an answering machine and a phone nobody answers",
    )
    p.add_argument("--verbose", action="store_true", help="show the server's logs")
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    configure_logging("info" if args.verbose else "error", "console")
    return asyncio.run(rehearse(args))
