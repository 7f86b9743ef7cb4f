"""What a scale test holds: the topology, this test's fakes, and simulated Twilio calling the
load balancer (never an instance directly)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from sqlalchemy import text

from tests.rig import PUBLIC, RELAY_QUIET_S, RELAY_SPEED, TOKEN
from tests.scale.topology import SERVERS, Topology
from voiceagent.sim.caller import place_call
from voiceagent.sim.fake_inworld_realtime import FakeInworldRealtime
from voiceagent.sim.fake_router import FakeRouter
from voiceagent.sim.script import CallRecord, Script
from voiceagent.sim.webhooks import SimTarget, Webhooks, call_form, new_sid
from voiceagent.store.live.redis_backend import KEY_PREFIX
from voiceagent.store.records.schema import make_engine

LEASES_KEY = KEY_PREFIX + "realtime_sessions"  # RedisRealtimeBudget's sorted set


@dataclass
class Scale:
    """Two instances behind HAProxy with this test's fakes; calls go through HAProxy."""

    topology: Topology
    realtime: FakeInworldRealtime
    router: FakeRouter
    http: aiohttp.ClientSession

    @property
    def target(self) -> SimTarget:
        return SimTarget(self.topology.base_url, PUBLIC, TOKEN)

    async def place_call(self, to: str, script: Script, **kw: Any) -> Any:
        """One simulated call through the balancer (relay playback at the rig's speed)."""
        kw.setdefault("speed", RELAY_SPEED)
        kw.setdefault("quiet_s", RELAY_QUIET_S)
        record: CallRecord = await place_call(self.target, to, script, http=self.http, **kw)
        return record

    async def voice(self, to: str) -> tuple[int, str]:
        """Only the signed `/voice` webhook of a new call: status and TwiML."""
        form = call_form(new_sid("CA"), to, "+14155550100", new_sid("AC"))
        return await Webhooks(self.target, self.http, form).voice()

    async def served_by(self) -> str:
        """Which instance answered a `GET /healthz` through the balancer."""
        async with self.http.get(self.topology.base_url + "/healthz") as resp:
            return resp.headers.get("X-Served-By", "")

    async def steer(self, name: str) -> None:
        """Make the balancer's next request go to `name` (round robin alternates; only valid
        while no other request is under way)."""
        for _ in range(4):
            if await self.served_by() not in ("", name):
                return
        raise AssertionError(f"the balancer does not alternate onto {name}")

    async def stream_on(self, name: str, to: str, script: Script) -> tuple[str, asyncio.Task[Any]]:
        """Start a call whose WebSocket lands on instance `name` (its webhook on the other);
        returns once the stream started there: its CallSid and the running call."""
        await self.steer(next(n for n in SERVERS if n != name))
        call_sid = new_sid("CA")
        task = asyncio.create_task(self.place_call(to, script, call_sid=call_sid))
        for _ in range(400):
            if streams := self.topology.where(call_sid)["stream"]:
                assert streams == {name}, streams
                return call_sid, task
            await asyncio.sleep(0.05)
        raise AssertionError(f"the stream of {call_sid} never started")

    async def metric(self, instance: str, name: str, **labels: str) -> float | None:
        """One sample of an instance's own `/metrics` (asked directly, not via the balancer)."""
        port = self.topology.instance(instance).port
        async with self.http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            body = await resp.text()
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name == name and labels.items() <= sample.labels.items():
                    return float(sample.value)
        return None

    async def leases(self) -> set[str]:
        """CallSids holding a lease of the shared Inworld Realtime session budget now."""
        redis = Redis.from_url(self.topology.redis_url)
        try:
            now_ms = await _redis_now_ms(redis)
            live = await redis.zrangebyscore(LEASES_KEY, f"({now_ms}", "+inf")
        finally:
            await redis.aclose()
        return {m.decode() if isinstance(m, bytes) else str(m) for m in live}

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        """Rows of the instances' records database (PostgreSQL)."""
        engine = make_engine(self.topology.database_url)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(text(sql), params)).all())
        finally:
            await engine.dispose()

    async def call_row(self, call_sid: str, within: float = 10.0) -> Any:
        """The call's `calls` row once its end is recorded (the writer lingers a little)."""
        async with asyncio.timeout(within):
            while True:
                rows = await self.rows("SELECT * FROM calls WHERE call_sid = :sid", sid=call_sid)
                if rows and rows[0].ended_at is not None:
                    return rows[0]
                await asyncio.sleep(0.1)


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float, every: float = 0.05
) -> None:
    """Wait until `check()` is true; TimeoutError after `within` seconds."""
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(every)


async def _redis_now_ms(redis: Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000
