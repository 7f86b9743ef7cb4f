"""Graceful drain of a real `voiceagent serve` process: SIGTERM during realtime calls."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from tests.rig import PUBLIC, TOKEN
from voiceagent.protocols.signature import compute_signature
from voiceagent.sim.fake_inworld_realtime import FakeInworldRealtime
from voiceagent.sim.media_caller import place_call
from voiceagent.sim.script import HangUp, Listen, Pause, Say
from voiceagent.sim.webhooks import SimTarget, call_form, new_sid

NUMBER = "+18005550101"
CONFIG = f'numbers:\n  "{NUMBER}": {{mode: realtime-passthrough}}\n'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def _server(
    tmp_path: Path, fake: FakeInworldRealtime, grace_s: float
) -> AsyncIterator[tuple[asyncio.subprocess.Process, SimTarget]]:
    (tmp_path / "voiceagent.yaml").write_text(CONFIG)
    port = _free_port()
    env = dict(
        os.environ,
        PUBLIC_URL=PUBLIC,
        TWILIO_AUTH_TOKEN=TOKEN,
        INWORLD_API_KEY=fake.options.api_key,
        INWORLD_REALTIME_URL=fake.url,
        PORT=str(port),
        HOST="127.0.0.1",
        DRAIN_GRACE_SECONDS=str(grace_s),
        VOICEAGENT_CONFIG=str(tmp_path / "voiceagent.yaml"),
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'records.sqlite3'}",
        LOG_LEVEL="warning",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "voiceagent",
        "serve",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    target = SimTarget(f"http://127.0.0.1:{port}", PUBLIC, TOKEN)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(target.base_url + "/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
        yield proc, target
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _webhook_status(target: SimTarget) -> int:
    form = call_form(new_sid("CA"), NUMBER, "+14155550100", new_sid("AC"))
    url = PUBLIC + "/voice"
    headers = {"X-Twilio-Signature": compute_signature(TOKEN, url, form)}
    async with (
        aiohttp.ClientSession() as http,
        http.post(target.local(url), data=form, headers=headers) as r,
    ):
        return r.status


async def _wait_open_sessions(fake: FakeInworldRealtime, n: int) -> None:
    for _ in range(500):
        if fake.open_sessions >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{n} upstream sessions never opened")


async def test_sigterm_lets_calls_finish_and_refuses_new_ones(
    tmp_path: Path, fake_realtime: FakeInworldRealtime
) -> None:
    """After SIGTERM calls in flight run their script to the end, new webhooks get 503, and
    the process exits 0 once the calls are over."""
    script = [Listen(), Say(ms=600), Listen(), HangUp()]
    fake = fake_realtime
    async with _server(tmp_path, fake, 20) as (proc, target):
        calls = [asyncio.create_task(place_call(target, NUMBER, script)) for _ in range(2)]
        await _wait_open_sessions(fake, 2)
        proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        assert await _webhook_status(target) == 503
        records = await asyncio.gather(*calls)
        code = await asyncio.wait_for(proc.wait(), 20)
    assert code == 0
    for rec in records:
        assert rec.closed_by == "caller" and len(rec.responses_heard()) == 2
    assert fake.open_sessions == 0
    assert set(_end_reasons(tmp_path).values()) == {"caller_hangup"}


async def test_grace_expiry_ends_remaining_calls_cleanly(
    tmp_path: Path, fake_realtime: FakeInworldRealtime
) -> None:
    """When the grace period runs out, calls still in flight are closed by the server, their
    Inworld sessions close, and the process exits 0."""
    long_call = [Listen(), Pause(30_000), HangUp()]
    fake = fake_realtime
    async with _server(tmp_path, fake, 0.5) as (proc, target):
        call = asyncio.create_task(place_call(target, NUMBER, long_call))
        await _wait_open_sessions(fake, 1)
        proc.send_signal(signal.SIGTERM)
        rec = await asyncio.wait_for(call, 15)
        code = await asyncio.wait_for(proc.wait(), 20)
        assert await fake.wait_no_open_sessions(within=5)
    assert code == 0 and rec.closed_by == "server" and rec.heard_ms > 0
    assert _end_reasons(tmp_path) == {rec.call_sid: "drained"}


def _end_reasons(tmp_path: Path) -> dict[str, str]:
    """The end reason of each call, from the server's records database."""
    with contextlib.closing(sqlite3.connect(tmp_path / "records.sqlite3")) as db:
        return dict(db.execute("SELECT call_sid, end_reason FROM calls").fetchall())
