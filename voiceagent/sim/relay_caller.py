"""A simulated ConversationRelay caller: Twilio's side of a relay-router call, over real sockets.

`place_relay_call` POSTs the signed `/voice` webhook, reads the TwiML, opens the signed
WebSocket, sends `setup` with all its keys, then follows a script: prompts, interrupts
mid-playback (with the played prefix and elapsed ms), DTMF, raw messages, hang-up. Server
messages are validated as strictly as Twilio does (an invalid one is answered with an `error`;
ten in a row close the socket with 1007); playback is simulated by `relay_playback.Player`.
When the session ends it POSTs the signed `<Connect action>` callback (`completed` on hang-up,
`ended` + `HandoffData` after `end`, `failed` if the socket broke) and, like Twilio, runs the
TwiML it gets back: a fresh `<ConversationRelay>` (a reconnect) continues the script.
Script steps and the call record are in relay_script.py.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from voiceagent.errors import ProtocolError
from voiceagent.protocols import conversation_relay as cr
from voiceagent.protocols.signature import compute_signature
from voiceagent.sim.relay_playback import Player, TurnRecord
from voiceagent.sim.relay_script import (
    Drop,
    Hangup,
    Interrupt,
    Pause,
    PressKey,
    RelayCallRecord,
    Say,
    ScriptStep,
    SendRaw,
)

__all__ = [
    "Drop", "Hangup", "Interrupt", "Pause", "PressKey", "RelayCallRecord", "Say", "ScriptStep",
    "SendRaw", "place_relay_call",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Pace:
    speed: float
    quiet_s: float
    greeting_wait_s: float


class _Session:
    def __init__(self, http: aiohttp.ClientSession, base_url: str, public_url: str,
                 record: RelayCallRecord, pace: _Pace) -> None:  # fmt: skip
        self.http, self.record, self.pace, self.quiet_s = http, record, pace, pace.quiet_s
        self.player = Player(http, base_url, public_url, pace.speed)
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.last_message = time.monotonic()
        self.bad_in_a_row = 0
        self.ended = asyncio.Event()
        self.end_received = False
        self.session_id = ""

    async def send(self, payload: dict[str, Any] | str) -> None:
        assert self.ws is not None
        if not self.ws.closed:
            data = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
            await self.ws.send_str(data)

    async def receive(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            await self.on_message(msg.data)
        self.record.close_code = self.ws.close_code
        self.ended.set()

    async def on_message(self, raw: str) -> None:
        now = self.last_message = time.monotonic()
        try:
            message = cr.parse_outbound(raw)
        except ProtocolError as exc:
            self.record.errors_sent.append(str(exc))
            self.bad_in_a_row += 1
            await self.send({"type": "error", "description": f"Invalid message received: {exc}"})
            if self.bad_in_a_row >= 10 and self.ws is not None:
                await self.ws.close(code=1007, message=b"Too many consecutive malformed messages")
            return
        self.bad_in_a_row = 0
        self.record.messages.append({**orjson.loads(raw), "_at": now})
        if isinstance(message, cr.Play):
            self.player.on_play(message.source, now)
        elif isinstance(message, cr.Text):
            self.player.on_text(message.token, message.last, now)
        elif isinstance(message, cr.End):
            self.record.handoff_data = message.handoff_data
            self.end_received = True
            self.ended.set()
            if self.ws is not None:  # Twilio ends the session: it closes the socket
                await self.ws.close()

    def start_turn(self, prompt: str | None) -> TurnRecord:
        turn = TurnRecord(prompt, time.monotonic())
        self.record.turns.append(turn)
        self.player.new_turn(turn)
        return turn

    async def prompt(self, text: str) -> None:
        self.start_turn(text)
        await self.send({"type": "prompt", "voicePrompt": text, "lang": "en-US", "last": True})

    async def listen(self, reply_timeout: float = 15.0) -> None:
        """Wait for the reply to start, then until playback is idle and the server quiet."""
        turn = self.player.turn
        deadline = time.monotonic() + reply_timeout
        while turn is not None and not (turn.clips or turn.first_text_at or turn.text):
            if time.monotonic() > deadline or self.ended.is_set():
                return
            await asyncio.sleep(0.01)
        while not self.ended.is_set():
            quiet = time.monotonic() - self.last_message >= self.quiet_s
            if quiet and self.player.idle:
                return
            await asyncio.sleep(0.02)

    async def interrupt(self, step: Interrupt) -> None:
        deadline = time.monotonic() + 15.0
        while self.player.elapsed_ms < step.after_ms and time.monotonic() < deadline:
            if self.ended.is_set():
                return
            await asyncio.sleep(0.002)
        heard_ms, heard_text = self.player.stop()
        await self.send({"type": "interrupt", "utteranceUntilInterrupt": heard_text,
                         "durationUntilInterruptMs": round(heard_ms)})  # fmt: skip
        await self.prompt(step.text)

    async def run_script(self, script: Sequence[ScriptStep]) -> tuple[str, Sequence[ScriptStep]]:
        """Play the script: ("hangup" | "drop" | "server", the steps not played yet)."""
        for index, step in enumerate(script):
            if self.ended.is_set():
                return "server", script[index:]
            next_step = script[index + 1] if index + 1 < len(script) else None
            listen = not isinstance(next_step, Interrupt)
            if isinstance(step, Say):
                listen = listen and step.listen
                await self.prompt(step.text)
            elif isinstance(step, Interrupt):
                await self.interrupt(step)
            elif isinstance(step, PressKey):
                self.start_turn(f"dtmf:{step.digit}")
                await self.send({"type": "dtmf", "digit": step.digit})
            elif isinstance(step, Pause | SendRaw):
                if isinstance(step, SendRaw):
                    await self.send(step.data)
                await asyncio.sleep(step.seconds if isinstance(step, Pause) else self.quiet_s)
                continue
            elif isinstance(step, Drop):
                return "drop", script[index + 1 :]
            else:
                return "hangup", ()
            if listen:
                await self.listen()
        return ("server", ()) if self.ended.is_set() else ("hangup", ())


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _parse_twiml(text: str, record: RelayCallRecord) -> tuple[str, str]:
    """The ConversationRelay `url` and the `<Connect action>` of the TwiML."""
    root = ET.fromstring(text)
    connect = root.find("Connect")
    relay = connect.find("ConversationRelay") if connect is not None else None
    if connect is None or relay is None:
        raise ProtocolError(f"TwiML has no <Connect><ConversationRelay>: {text[:200]}")
    record.relay_attributes = dict(relay.attrib)
    record.parameters = {p.get("name", ""): p.get("value", "") for p in relay.findall("Parameter")}
    return relay.get("url", ""), connect.get("action", "")


async def _signed_post(
    http: aiohttp.ClientSession, base_url: str, public_url: str, url: str, form: dict[str, str],
    auth_token: str,
) -> tuple[int, str]:  # fmt: skip
    """POST `form` to the public `url` (sent to `base_url`), signed as Twilio signs it."""
    signature = compute_signature(auth_token, url, form)
    local = url.replace(public_url, base_url, 1)
    async with http.post(local, data=form, headers={"X-Twilio-Signature": signature}) as resp:
        return resp.status, await resp.text()


async def place_relay_call(
    base_url: str,
    *,
    public_url: str,
    auth_token: str,
    number: str,
    script: Sequence[ScriptStep],
    caller: str = "+14155550100",
    speed: float = 1.0,
    quiet_s: float = 0.3,
    greeting_wait_s: float = 10.0,
    call_sid: str | None = None,
    http: aiohttp.ClientSession | None = None,
    twiml: str | None = None,
) -> RelayCallRecord:
    """Place one relay-router call against the server at `base_url` and return its record.

    `public_url` is the server's PUBLIC_URL (what it signs and writes into TwiML and clip
    URLs); `speed` accelerates playback (clips and Twilio's TTS); `quiet_s` is how long the
    server must stay silent, playback idle, for the caller to take the reply as finished;
    `greeting_wait_s` how long the caller waits for a greeting before its first step;
    `twiml`, when given, is TwiML Twilio is already executing for this call (e.g. what an
    earlier `<Connect action>` answered): the call starts from it instead of `/voice`.
    """
    base_url, public_url = base_url.rstrip("/"), public_url.rstrip("/")
    record = RelayCallRecord(call_sid or _sid("CA"), twiml=twiml or "")
    own_http = http is None
    session_http = http or aiohttp.ClientSession()
    try:
        pace = _Pace(speed, quiet_s, greeting_wait_s)
        return await _call(session_http, base_url, public_url, auth_token, number, script,
                           caller, pace, record)  # fmt: skip
    finally:
        if own_http:
            await session_http.close()


async def _call(
    http: aiohttp.ClientSession, base_url: str, public_url: str, auth_token: str, number: str,
    script: Sequence[ScriptStep], caller: str, pace: _Pace, record: RelayCallRecord,
) -> RelayCallRecord:  # fmt: skip
    account = _sid("AC")
    form = {
        "CallSid": record.call_sid, "AccountSid": account, "From": caller, "To": number,
        "CallStatus": "ringing", "ApiVersion": "2010-04-01", "Direction": "inbound",
    }  # fmt: skip
    status = 200
    if not record.twiml:
        status, record.twiml = await _signed_post(
            http, base_url, public_url, public_url + "/voice", form, auth_token
        )
    if status != 200:
        raise ProtocolError(f"/voice answered {status}: {record.twiml[:200]}")
    started = time.monotonic()
    while True:
        record.sessions += 1
        session, outcome, script = await _session(
            http, base_url, public_url, auth_token, form, record, script, pace
        )
        action_twiml = await _report_end(
            http, base_url, public_url, auth_token, form, record, session, outcome, started
        )
        if outcome != "drop" or "<ConversationRelay " not in action_twiml:
            return record
        record.twiml = action_twiml  # Twilio runs the action's TwiML: a reconnect


async def _session(
    http: aiohttp.ClientSession, base_url: str, public_url: str, auth_token: str,
    form: dict[str, str], record: RelayCallRecord, script: Sequence[ScriptStep], pace: _Pace,
) -> tuple[_Session, str, Sequence[ScriptStep]]:  # fmt: skip
    """One ConversationRelay session of the call, from the TwiML in `record.twiml`."""
    ws_url, record.action_url = _parse_twiml(record.twiml, record)
    public_wss = "wss://" + public_url.split("://", 1)[1]
    local_ws = ws_url.replace(public_wss, "ws://" + base_url.split("://", 1)[1], 1)
    headers = {"x-twilio-signature": compute_signature(auth_token, ws_url, {})}
    session = _Session(http, base_url, public_url, record, pace)
    session.session_id = _sid("VX")
    async with http.ws_connect(local_ws, headers=headers, compress=0) as ws:
        session.ws = ws
        await session.send({
            "type": "setup", "sessionId": session.session_id, "accountSid": form["AccountSid"],
            "parentCallSid": "", "callSid": record.call_sid, "from": form["From"],
            "to": form["To"], "forwardedFrom": "", "callType": "PSTN", "callerName": "",
            "direction": "inbound", "callStatus": "RINGING", "customParameters": record.parameters,
        })  # fmt: skip
        outcome, rest = await _converse(session, script)
        if outcome != "server":
            await ws.close(code=1000 if outcome == "hangup" else 1011)
    await asyncio.gather(*session.player.tasks, return_exceptions=True)
    return session, outcome, rest


async def _report_end(
    http: aiohttp.ClientSession, base_url: str, public_url: str, auth_token: str,
    form: dict[str, str], record: RelayCallRecord, session: _Session, outcome: str,
    started: float,
) -> str:  # fmt: skip
    """POST the signed `<Connect action>` callback as Twilio does; returns its TwiML."""
    hung_up = outcome == "hangup"
    if hung_up:
        record.session_status = "completed"
    else:
        record.session_status = "ended" if session.end_received else "failed"
    action_form = {
        **form, "SessionId": session.session_id, "SessionStatus": record.session_status,
        "SessionDuration": str(round(time.monotonic() - started)),
        "CallStatus": "completed" if hung_up else "in-progress",
    }  # fmt: skip
    if record.handoff_data is not None:
        action_form["HandoffData"] = record.handoff_data
    if record.session_status == "failed":
        action_form |= {"ErrorCode": "64105", "ErrorMessage": "WebSocket Ended"}
    if record.action_url:
        _, record.action_twiml = await _signed_post(
            http, base_url, public_url, record.action_url, action_form, auth_token
        )
    return record.action_twiml


async def _converse(
    session: _Session, script: Sequence[ScriptStep]
) -> tuple[str, Sequence[ScriptStep]]:
    """Greeting, then the script, with the receive side running (see `run_script`)."""
    player = asyncio.create_task(session.player.run())
    receiver = asyncio.create_task(session.receive())
    try:
        if session.record.sessions == 1:  # a reconnect is not greeted again
            greeting = session.record.relay_attributes.get("welcomeGreeting")
            session.start_turn(None)
            if greeting:
                session.player.on_text(greeting, True, time.monotonic())
            await session.listen(session.pace.greeting_wait_s)
        return await session.run_script(script)
    finally:
        player.cancel()
        if session.ended.is_set():
            await asyncio.gather(receiver, return_exceptions=True)
        else:
            receiver.cancel()
        await asyncio.gather(player, receiver, return_exceptions=True)
