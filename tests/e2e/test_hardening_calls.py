"""Issue 25 through the real wire: values and sockets from a hostile Twilio end nothing but
their own call (simulated Twilio against the rig; JSON logs rendered as in production)."""

from __future__ import annotations

import asyncio
import io
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager

import aiohttp
import orjson
import pytest
import structlog
from aiohttp import WSCloseCode, WSMsgType

from tests.rig import REALTIME_A, RELAY, Rig, StartRig, webhook_form
from voiceagent.logging import log_processors
from voiceagent.protocols import twilio_media as tm
from voiceagent.session.call import EndReason
from voiceagent.sim.script import HangUp, Pause, SendRaw
from voiceagent.sim.webhooks import Webhooks, new_sid
from voiceagent.web.phone_socket import pending_streams


@contextmanager
def json_logs() -> Iterator[io.StringIO]:
    """Every log line rendered by the production JSON renderer into a buffer, for the block."""
    old = structlog.get_config()
    out = io.StringIO()
    structlog.configure(
        processors=log_processors("json"),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    try:
        yield out
    finally:
        structlog.configure(**old)


def _events(out: io.StringIO, event: str) -> list[dict[str, object]]:
    lines = [orjson.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


async def test_implausible_interrupt_duration_neither_crashes_nor_reaches_the_logs(
    start_rig: StartRig,
) -> None:
    """An `interrupt` whose durationUntilInterruptMs is 1e308 is a barge-in with an unknown
    duration: logged as JSON, and the call ends because the caller hung up, not as a crash."""
    rig = await start_rig()
    interrupt = '{"type": "interrupt", "utteranceUntilInterrupt": "Hel", '
    interrupt += '"durationUntilInterruptMs": 1e308}'
    with json_logs() as out:
        record = await rig.place_call(RELAY, [SendRaw(interrupt), Pause(300), HangUp()])
        call = await rig.ended(record.call_sid)
    assert call.end_reason is EndReason.CALLER_HANGUP
    assert not _events(out, "call_crashed")
    [barge_in] = _events(out, "barge_in")
    assert barge_in["heard_ms"] is None


# -- item 2: sockets before their stream token ------------------------------------------------


async def _answered(rig: Rig, to: str = REALTIME_A) -> tuple[int, str, dict[str, str], str]:
    """A signed `/voice` for a new call: status, the stream's public URL, its parameters and
    the CallSid."""
    call_sid = new_sid("CA")
    status, twiml = await rig.post_signed("/voice", webhook_form(to, call_sid))
    if status != 200 or "<Stream" not in twiml:
        return status, "", {}, call_sid
    stream = ET.fromstring(twiml).find("Connect/Stream")
    assert stream is not None
    parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return status, stream.get("url", ""), parameters, call_sid


@asynccontextmanager
async def _upgrade(rig: Rig, url: str) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """The stream's WebSocket, upgraded with Twilio's (valid, replayable) upgrade signature."""
    signature = Webhooks(rig.target, rig.http, {}).sign(url, {})
    async with rig.http.ws_connect(
        rig.target.local(url), headers={"X-Twilio-Signature": signature}
    ) as ws:
        await ws.send_str('{"event":"connected","protocol":"Call","version":"1.0.0"}')
        yield ws


def _start(call_sid: str, parameters: dict[str, str]) -> str:
    info = tm.StartInfo(account_sid=new_sid("AC"), stream_sid="MZ1", call_sid=call_sid,
                        custom_parameters=parameters)  # fmt: skip
    return tm.dump(tm.Start(sequence_number=1, stream_sid="MZ1", start=info))


async def _closed_within(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> int | None:
    """Read until the server closes the socket (at most `seconds`); its close code."""
    async with asyncio.timeout(seconds):
        while (await ws.receive()).type not in (WSMsgType.CLOSE, WSMsgType.CLOSED):
            pass
    return ws.close_code


async def test_silent_or_forged_sockets_take_no_call_slot(start_rig: StartRig) -> None:
    """Five sockets upgraded with the replayable signature that stay silent, with
    MAX_CONCURRENT_CALLS=2: no call is counted and a signed `/voice` still answers with a
    stream; a socket whose `start` carries a forged token is closed (1008) at once."""
    rig = await start_rig(max_concurrent_calls=2)
    _, url, parameters, call_sid = await _answered(rig)
    async with AsyncExitStack() as stack:
        for _ in range(5):
            await stack.enter_async_context(_upgrade(rig, url))
        for _ in range(50):
            if pending_streams(rig.services) == 5:
                break
            await asyncio.sleep(0.02)
        assert pending_streams(rig.services) == 5 and rig.services.calls.count() == 0
        status, url_now, _, _ = await _answered(rig)
        assert status == 200 and url_now
        forged = dict(parameters, token="0" * 64)
        async with _upgrade(rig, url) as ws:
            sent = time.monotonic()
            await ws.send_str(_start(call_sid, forged))
            assert await _closed_within(ws, 1.5) == WSCloseCode.POLICY_VIOLATION
            assert time.monotonic() - sent < 1.5
    assert rig.services.calls.count() == 0


async def test_a_silent_socket_is_closed_after_the_start_deadline(start_rig: StartRig) -> None:
    """A socket that never sends `start` is closed (1008) once STREAM_START_TIMEOUT passed,
    and no longer held for a closing handshake it never answers."""
    rig = await start_rig(stream_start_timeout=0.5)
    _, url, _, _ = await _answered(rig)
    async with _upgrade(rig, url) as ws:
        assert await _closed_within(ws, 2.0) == WSCloseCode.POLICY_VIOLATION
    for _ in range(50):
        if pending_streams(rig.services) == 0:
            break
        await asyncio.sleep(0.02)
    assert pending_streams(rig.services) == 0


async def test_pending_sockets_have_their_own_small_budget(start_rig: StartRig) -> None:
    """Past MAX_PENDING_STREAMS sockets awaiting their start, an upgrade is refused with 503
    (no socket); a real call answered meanwhile still streams once one is gone."""
    rig = await start_rig(max_pending_streams=2)
    _, url, parameters, call_sid = await _answered(rig)
    async with _upgrade(rig, url), _upgrade(rig, url):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            async with _upgrade(rig, url):
                pass
        assert refused.value.status == 503
    for _ in range(50):
        if pending_streams(rig.services) == 0:
            break
        await asyncio.sleep(0.02)
    async with _upgrade(rig, url) as ws:
        await ws.send_str(_start(call_sid, parameters))
        for _ in range(100):
            if rig.services.calls.count() == 1:
                break
            await asyncio.sleep(0.02)
        assert rig.services.calls.count() == 1 and pending_streams(rig.services) == 0


@pytest.mark.parametrize(
    "change",
    [{"number": "+18005550103"}, {"failover_from": "relay-router"}, {"attempt": "2"},
     {"mode": "relay-router"}],
)  # fmt: skip
async def test_stream_token_binds_the_parameters_it_came_with(
    start_rig: StartRig, change: dict[str, str]
) -> None:
    """The stream token of a call answered by `/voice` stops being valid when the number,
    attempt, mode or failover origin of its `<Parameter>`s is changed or added: the stream is
    refused (1008) before any call starts; unchanged, the same parameters open the call."""
    rig = await start_rig()
    _, url, parameters, call_sid = await _answered(rig)
    async with _upgrade(rig, url) as ws:
        await ws.send_str(_start(call_sid, parameters | change))
        assert await _closed_within(ws, 2.0) == WSCloseCode.POLICY_VIOLATION
    assert not rig.calls.started
    async with _upgrade(rig, url) as ws:
        await ws.send_str(_start(call_sid, parameters))
        for _ in range(100):
            if rig.calls.started:
                break
            await asyncio.sleep(0.02)
    assert [c.call_sid for c in rig.calls.started] == [call_sid]
