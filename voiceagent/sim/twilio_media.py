"""A simulated Twilio for Media Streams: one whole call against a voiceagent server.

``place_call`` POSTs the signed ``/voice`` webhook (twilio.md §4.1), follows the TwiML, opens
the signed WebSocket (signed over the public ``wss://`` URL, connected to the local one),
sends ``connected`` and ``start`` (``customParameters`` from the ``<Parameter>``s), then one
20 ms µ-law ``media`` frame per tick in real time from a ``CallScript``, while playing the
agent's audio at real time with Twilio's mark and ``clear`` semantics (call_script.py).
Outbound frames are checked as strictly as Twilio does (31950 binary, 31951 invalid; once
each, never closing). When the server closes the socket it POSTs the signed
``<Connect action>`` callback and keeps the TwiML it gets back.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import secrets
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache

import aiohttp

from voiceagent.audio import speech_like_ulaw
from voiceagent.errors import ProtocolError
from voiceagent.protocols import twilio_media as tm
from voiceagent.protocols.signature import compute_signature
from voiceagent.sim.call_script import (
    FRAME_BYTES,
    CallRecord,
    CallScript,
    Drop,
    HangUp,
    Outbound,
    PressDigit,
    SendRaw,
    Silence,
    Speak,
    TwilioPlayback,
    WaitForAgent,
)

TICK_S = 0.02
_SILENCE_B64 = binascii.b2a_base64(b"\xff" * FRAME_BYTES, newline=False).decode()


@lru_cache(maxsize=32)
def _speech(ms: int, seed: int) -> bytes:
    return speech_like_ulaw(ms, seed=seed)


@dataclass(frozen=True, slots=True)
class SimTarget:
    """Where the server listens locally, the public URL it believes in, and the auth token."""

    base_url: str  # e.g. http://127.0.0.1:8080
    public_url: str  # e.g. https://voice.example.com (what Twilio signs)
    auth_token: str

    def local(self, public: str) -> str:
        """Map a public https/wss URL from TwiML onto the local server."""
        base = self.public_url.rstrip("/")
        host = base.split("://", 1)[1]
        path = public.split(host, 1)[1] if host in public else public
        scheme = "ws" if public.startswith(("wss:", "ws:")) else "http"
        return scheme + self.base_url[self.base_url.index(":") :] + path


def new_sid(prefix: str) -> str:
    """A realistic Twilio SID: two letters and 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def call_form(call_sid: str, to: str, from_: str, account_sid: str) -> dict[str, str]:
    """The incoming-call webhook params, as real Twilio sends them (§4.1)."""
    return {
        "CallSid": call_sid,
        "AccountSid": account_sid,
        "From": from_,
        "To": to,
        "CallStatus": "ringing",
        "ApiVersion": "2010-04-01",
        "Direction": "inbound",
        "Caller": from_,
        "Called": to,
        "FromCountry": "US",
        "FromState": "CA",
        "FromCity": "",
        "FromZip": "",
        "ToCountry": "US",
        "ToState": "",
        "ToCity": "",
        "ToZip": "",
        "CallerCountry": "US",
        "CallerState": "CA",
        "CallerCity": "",
        "CallerZip": "",
        "CalledCountry": "US",
        "CalledState": "",
        "CalledCity": "",
        "CalledZip": "",
    }


async def place_call(
    target: SimTarget,
    to: str,
    script: CallScript,
    *,
    from_: str = "+14155550100",
    call_sid: str | None = None,
    http: aiohttp.ClientSession | None = None,
    bad_signature: bool = False,
    record_timing: bool = False,
) -> CallRecord:
    """Place one simulated call and return what the caller observed."""
    own = http is None
    session = http or aiohttp.ClientSession()
    try:
        call = _Call(target, session, to, from_, call_sid or new_sid("CA"), bad_signature)
        call.record_timing = record_timing
        await call.run(script)
        return call.record
    finally:
        if own:
            await session.close()


class _Call:
    def __init__(
        self,
        target: SimTarget,
        http: aiohttp.ClientSession,
        to: str,
        from_: str,
        call_sid: str,
        bad_signature: bool,
    ) -> None:
        self.target, self.http = target, http
        self.account_sid = new_sid("AC")
        self.stream_sid = new_sid("MZ")
        self.form = call_form(call_sid, to, from_, self.account_sid)
        self.record = CallRecord(call_sid=call_sid, to=to)
        self.bad_signature = bad_signature
        self.record_timing = False
        self.playback = TwilioPlayback()
        self.seq = 0
        self.chunk = 0
        self.server_closed = asyncio.Event()

    def sign(self, url: str, params: dict[str, str]) -> str:
        token = self.target.auth_token + ("x" if self.bad_signature else "")
        return compute_signature(token, url, params)

    async def run(self, script: CallScript) -> None:
        url = self.target.public_url.rstrip("/") + "/voice"
        async with self.http.post(
            self.target.local(url),
            data=self.form,
            headers={"X-Twilio-Signature": self.sign(url, self.form)},
        ) as r:
            self.record.webhook_status = r.status
            self.record.twiml = await r.text()
        if self.record.webhook_status != 200 or not self._follow_twiml():
            return
        headers = {"x-twilio-signature": self.sign(self.record.stream_url, {})}
        try:
            ws = await self.http.ws_connect(
                self.target.local(self.record.stream_url), headers=headers, autoping=True
            )
        except aiohttp.WSServerHandshakeError as exc:
            self.record.ws_status = exc.status
            return
        async with ws:
            await self._stream(ws, script)
        self.record.ended_at = time.monotonic()
        if self.record.closed_by == "server" and self.record.action_url:
            with contextlib.suppress(aiohttp.ClientError):  # e.g. the server has gone
                await self._post_action()

    def _follow_twiml(self) -> bool:
        """Read ``<Connect action><Stream url>``; False for any other TwiML (e.g. a refusal)."""
        root = ET.fromstring(self.record.twiml)
        connect = root.find("Connect")
        stream = connect.find("Stream") if connect is not None else None
        if connect is None or stream is None:
            return False
        self.record.action_url = connect.get("action", "")
        self.record.stream_url = stream.get("url", "")
        self.record.parameters = {
            p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")
        }
        return True

    async def _post_action(self) -> None:
        form = dict(self.form, CallStatus="in-progress")
        url = self.record.action_url
        async with self.http.post(
            self.target.local(url), data=form, headers={"X-Twilio-Signature": self.sign(url, form)}
        ) as r:
            self.record.action_status = r.status
            self.record.action_twiml = await r.text()

    # -- the stream -----------------------------------------------------------------------------
    async def _stream(self, ws: aiohttp.ClientWebSocketResponse, script: CallScript) -> None:
        receiver = asyncio.create_task(self._receive(ws))
        try:
            await ws.send_str('{"event":"connected","protocol":"Call","version":"1.0.0"}')
            if not script.skip_start:
                await self._send_start(ws)
            await self._play_script(ws, script)
        except (ConnectionError, RuntimeError, aiohttp.ClientError):
            pass
        finally:
            if not ws.closed and not self.server_closed.is_set():
                self.record.closed_by = self.record.closed_by or "caller"
                await ws.close()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(receiver, 5.0)
            self.record.close_code = ws.close_code

    async def _send_start(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        start = tm.Start(
            sequence_number=self._next_seq(),
            stream_sid=self.stream_sid,
            start=tm.StartInfo(
                account_sid=self.account_sid,
                stream_sid=self.stream_sid,
                call_sid=self.record.call_sid,
                custom_parameters=self.record.parameters,
            ),
        )
        await ws.send_str(tm.dump(start))
        self.record.started_at = time.monotonic()
        self._clock = self.record.started_at

    _clock = 0.0

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    async def _play_script(self, ws: aiohttp.ClientWebSocketResponse, script: CallScript) -> None:
        self._clock = self._clock or time.monotonic()
        for step in script.steps:
            if self.server_closed.is_set():
                return
            if isinstance(step, Speak):
                audio = _speech(step.ms, step.seed)
                for i in range(0, len(audio), FRAME_BYTES):
                    if not await self._tick(ws, audio[i : i + FRAME_BYTES]):
                        return
                self.record.speech_ends.append(time.monotonic())
            elif isinstance(step, Silence):
                for _ in range(step.ms // 20):
                    if not await self._tick(ws, None):
                        return
            elif isinstance(step, WaitForAgent):
                if not await self._wait_for_agent(ws, step):
                    return
            elif isinstance(step, PressDigit):
                await ws.send_str(
                    tm.dump(
                        tm.Dtmf(
                            stream_sid=self.stream_sid,
                            sequence_number=self._next_seq(),
                            dtmf=tm.DtmfInfo(track="inbound_track", digit=step.digit),
                        )
                    )
                )
            elif isinstance(step, SendRaw):
                if isinstance(step.data, bytes):
                    await ws.send_bytes(step.data)
                else:
                    await ws.send_str(step.data)
            elif isinstance(step, Drop):
                self.record.closed_by = "caller"
                await ws.close()
                return
            elif isinstance(step, HangUp):
                break
        await self._hang_up(ws)

    async def _hang_up(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        if self.server_closed.is_set() or ws.closed:
            return
        stop = tm.Stop(
            sequence_number=self._next_seq(),
            stream_sid=self.stream_sid,
            stop=tm.StopInfo(account_sid=self.account_sid, call_sid=self.record.call_sid),
        )
        await ws.send_str(tm.dump(stop))
        self.record.closed_by = "caller"
        await ws.close()

    async def _wait_for_agent(
        self, ws: aiohttp.ClientWebSocketResponse, step: WaitForAgent
    ) -> bool:
        since = len(self.record.heard)
        last_speech = self.record.speech_ends[-1] if self.record.speech_ends else 0.0
        quiet_ticks = 0
        for _ in range(step.timeout_ms // 20):
            if not await self._tick(ws, None):
                return False
            heard_new = any(t > last_speech for t in self.record.heard_starts)
            if step.until == "playing":
                if (len(self.record.heard) - since) / 8 >= step.min_heard_ms:
                    return True
                continue
            quiet_ticks = quiet_ticks + 1 if self.playback.buffered == 0 else 0
            if heard_new and quiet_ticks >= 10:
                return True
        return True

    async def _tick(self, ws: aiohttp.ClientWebSocketResponse, audio: bytes | None) -> bool:
        """Send one media frame and play 20 ms of agent audio, in real time."""
        self._clock += TICK_S
        delay = self._clock - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if self.server_closed.is_set() or ws.closed:
            return False
        self.chunk += 1
        payload = (
            _SILENCE_B64 if audio is None else binascii.b2a_base64(audio, newline=False).decode()
        )
        frame = (
            '{"event":"media","sequenceNumber":"'
            + str(self._next_seq())
            + '","media":{"track":"inbound","chunk":"'
            + str(self.chunk)
            + '","timestamp":"'
            + str((self.chunk - 1) * 20)
            + '","payload":"'
            + payload
            + '"},"streamSid":"'
            + self.stream_sid
            + '"}'
        )
        now = time.monotonic()
        await ws.send_str(frame)
        self.record.frames_sent += 1
        if self.record_timing:
            self.record.frame_times.append(now)
        for name in self.playback.tick(self.record, now):
            await self._echo(ws, name)
        return True

    async def _echo(self, ws: aiohttp.ClientWebSocketResponse, name: str) -> None:
        self.record.marks_echoed.append(name)
        if not ws.closed:
            mark = tm.Mark(
                sequence_number=self._next_seq(),
                stream_sid=self.stream_sid,
                mark=tm.MarkInfo(name=name),
            )
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(tm.dump(mark))

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            now = time.monotonic()
            if msg.type is aiohttp.WSMsgType.BINARY:
                self._warn(31950)
                continue
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            try:
                frame = tm.parse_outbound(msg.data)
            except ProtocolError:
                self._warn(31951)
                continue
            if frame.stream_sid != self.stream_sid:
                self._warn(31951)
                continue
            await self._on_outbound(ws, frame, now)
        if self.record.closed_by == "":
            self.record.closed_by = "server"
        self.server_closed.set()

    async def _on_outbound(
        self, ws: aiohttp.ClientWebSocketResponse, frame: tm.TwilioOutbound, now: float
    ) -> None:
        if isinstance(frame, tm.OutMedia):
            try:
                audio = binascii.a2b_base64(frame.media.payload, strict_mode=True)
            except ValueError:
                self._warn(31951)
                return
            self.playback.add_audio(audio)
            self.record.outbound.append(Outbound(now, "media", len(audio)))
            if self.record_timing:
                self.record.media_received.append((now, len(audio)))
        elif isinstance(frame, tm.OutMark):
            self.record.outbound.append(Outbound(now, "mark", frame.mark.name))
            for name in self.playback.add_mark(frame.mark.name):
                await self._echo(ws, name)
        else:
            self.record.outbound.append(Outbound(now, "clear", 0))
            self.record.clears.append(now)
            for name in self.playback.clear(self.record):
                await self._echo(ws, name)

    def _warn(self, code: int) -> None:
        if code not in self.record.warnings:
            self.record.warnings.append(code)
