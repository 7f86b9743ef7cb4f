"""The Media Streams WebSocket of a simulated call, as Twilio runs it (docs/protocols.md, Twilio
§1).

``connected``, ``start``, then one 20 ms µ-law ``media`` frame per tick in real time from a
script (``script.py``), while the agent's audio plays at real time with Twilio's mark and ``clear``
semantics (``TwilioPlayback``). Outbound frames are checked as strictly as Twilio does
(31950 binary, 31951 invalid; once each, never closing).
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import time
from functools import lru_cache

import aiohttp

from voiceagent.audio import speech_like_ulaw
from voiceagent.errors import ProtocolError
from voiceagent.protocols import twilio_media as tm
from voiceagent.sim.media_playback import FRAME_BYTES, MediaCallRecord, Outbound, TwilioPlayback
from voiceagent.sim.script import Drop, HangUp, Listen, Pause, PressKey, Say, Script, SendRaw

TICK_S = 0.02
_SILENCE_B64 = binascii.b2a_base64(b"\xff" * FRAME_BYTES, newline=False).decode()


@lru_cache(maxsize=32)
def _speech(ms: int, seed: int) -> bytes:
    return speech_like_ulaw(ms, seed=seed)


class MediaStreamCaller:
    """Twilio's side of one Media Streams socket; fills the call's ``MediaCallRecord``."""

    def __init__(self, record: MediaCallRecord, account_sid: str, stream_sid: str) -> None:
        self.record = record
        self.skip_start = False  # send media before `start` (protocol-error tests)
        self.account_sid = account_sid
        self.stream_sid = stream_sid
        self.record_timing = False
        self.playback = TwilioPlayback()
        self.seq = 0
        self.chunk = 0
        self.server_closed = asyncio.Event()

    async def run(self, ws: aiohttp.ClientWebSocketResponse, script: Script) -> None:
        """Stream the script in real time until it ends or the server closes the socket."""
        receiver = asyncio.create_task(self._receive(ws))
        try:
            await ws.send_str('{"event":"connected","protocol":"Call","version":"1.0.0"}')
            if not self.skip_start:
                await self._send_start(ws)
            await self._play_script(ws, script)
        except (ConnectionError, RuntimeError, aiohttp.ClientError):
            # A send failed: the server's side went away (a SIGKILL resets the connection),
            # which the receiving task may not have seen yet; the caller did not hang up.
            self.record.closed_by = self.record.closed_by or "server"
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

    async def _play_script(self, ws: aiohttp.ClientWebSocketResponse, script: Script) -> None:
        self._clock = self._clock or time.monotonic()
        for step in script:
            if self.server_closed.is_set():
                return
            if isinstance(step, Say):
                audio = _speech(step.speech_ms, step.seed)
                for i in range(0, len(audio), FRAME_BYTES):
                    if not await self._tick(ws, audio[i : i + FRAME_BYTES]):
                        return
                self.record.speech_ends.append(time.monotonic())
            elif isinstance(step, Pause):
                for _ in range(step.ms // 20):
                    if not await self._tick(ws, None):
                        return
            elif isinstance(step, Listen):
                if not await self._wait_for_agent(ws, step):
                    return
            elif isinstance(step, PressKey):
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

    async def _wait_for_agent(self, ws: aiohttp.ClientWebSocketResponse, step: Listen) -> bool:
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
        """`now`: when this task read the frame."""
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
