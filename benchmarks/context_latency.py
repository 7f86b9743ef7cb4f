"""Time to greeting with a call-context webhook answering in 100 ms vs no webhook, side by side.

One process: the voiceagent app on 127.0.0.1, the fake Inworld Realtime (realistic 450 ms to
first audio), a local webhook receiver answering the context after `--context-ms`, and the
simulated Twilio caller. Calls alternate between two realtime numbers, one with the context
webhook and one without; the greeting time is measured from the `/voice` POST to the first
agent audio the caller plays. `--stream-open-ms` is how long after the TwiML the simulated
Twilio opens the Media Streams socket (real Twilio takes a few hundred ms; 0 is the worst
case for the webhook, which then overlaps nothing). Target: with a context answering within
300 ms, the greeting is no later than without (the fetch runs while the socket opens).

Run: `.venv/bin/python benchmarks/context_latency.py [--calls 20] [--stream-open-ms 0 300]`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import aiohttp
from aiohttp import web

from voiceagent.app import create_app
from voiceagent.config import parse_config
from voiceagent.logging import configure_logging
from voiceagent.settings import Settings
from voiceagent.sim.caller import place_call
from voiceagent.sim.fake_inworld_realtime import FakeInworldRealtime
from voiceagent.sim.fake_options import FakeRealtimeOptions
from voiceagent.sim.hooks_receiver import HooksReceiver
from voiceagent.sim.script import HangUp, Listen
from voiceagent.sim.webhooks import SimTarget, Webhooks, call_form, new_sid

PUBLIC, TOKEN, KEY, SECRET = "https://bench.test", "bench-token", "bench-key", "b" * 32
PLAIN, WITH_CONTEXT = "+18005550151", "+18005550152"


def _config(receiver: HooksReceiver) -> Any:
    hooks = {"call_context": {"url": receiver.context_url, "timeout_ms": 1500}}
    agent = {"greeting": "Hello {{first_name}}!"}
    return parse_config({"numbers": {
        PLAIN: {"mode": "realtime-passthrough", "agent": {"greeting": "Hello Ada!"}},
        WITH_CONTEXT: {"mode": "realtime-passthrough", "webhooks": hooks, "agent": agent},
    }})  # fmt: skip


async def _one(target: SimTarget, http: aiohttp.ClientSession, to: str, open_s: float) -> float:
    """Milliseconds from the /voice POST to the first agent audio the caller plays."""
    sid = new_sid("CA")
    started = time.monotonic()
    status, twiml = await Webhooks(target, http, call_form(sid, to, "+14155550100", "AC1")).voice()
    assert status == 200, status
    await asyncio.sleep(open_s)  # Twilio opening the Media Streams socket
    record: Any = await place_call(target, to, [Listen(1.0), HangUp()], call_sid=sid,
                                   http=http, twiml=twiml)  # fmt: skip
    assert record.first_heard_at is not None, "no greeting heard"
    return (record.first_heard_at - started) * 1000


async def _run(calls: int, context_ms: float, opens_ms: list[float]) -> None:
    receiver = await HooksReceiver(SECRET, context_delay_s=context_ms / 1000).start()
    options = FakeRealtimeOptions(api_key=KEY)
    async with FakeInworldRealtime(options) as fake:
        settings = Settings(public_url=PUBLIC, twilio_auth_token=TOKEN, inworld_api_key=KEY,
                            inworld_realtime_url=fake.url, database_url="",
                            webhook_signing_secret=SECRET)  # fmt: skip
        runner = web.AppRunner(create_app(settings, _config(receiver)), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        target = SimTarget(base, PUBLIC, TOKEN)
        try:
            async with aiohttp.ClientSession() as http:
                await _one(target, http, PLAIN, 0)  # warm-up
                for open_ms in opens_ms:
                    times: dict[str, list[float]] = {PLAIN: [], WITH_CONTEXT: []}
                    for _ in range(calls):
                        for number in (PLAIN, WITH_CONTEXT):
                            times[number].append(await _one(target, http, number, open_ms / 1000))
                    _print(open_ms, context_ms, times)
        finally:
            await runner.cleanup()
            await receiver.stop()


def _print(open_ms: float, context_ms: float, times: dict[str, list[float]]) -> None:
    plain, ctx = sorted(times[PLAIN]), sorted(times[WITH_CONTEXT])

    def q(v: list[float], p: float) -> float:
        return v[min(len(v) - 1, int(p * len(v)))]

    diff = statistics.median(ctx) - statistics.median(plain)
    print(f"stream opens {open_ms:.0f} ms after the TwiML; context answers in {context_ms:.0f} ms")
    print(f"  {'greeting (ms)':28} {'n':>4} {'p50':>7} {'p90':>7}")
    for name, v in (("no context webhook", plain), ("context webhook", ctx)):
        print(f"  {name:28} {len(v):4} {q(v, 0.5):7.1f} {q(v, 0.9):7.1f}")
    print(f"  context - none, p50: {diff:+.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="calls per arm and delay")
    parser.add_argument("--context-ms", type=float, default=100.0)
    parser.add_argument("--stream-open-ms", type=float, nargs="+", default=[0.0, 300.0])
    args = parser.parse_args()
    configure_logging("warning", "console")
    asyncio.run(_run(args.calls, args.context_ms, args.stream_open_ms))


if __name__ == "__main__":
    main()
