"""A simulated ConversationRelay caller: Twilio's side of a relay-router call, over real sockets.

`place_relay_call` POSTs the signed `/voice` webhook, reads the TwiML, opens the signed
WebSocket, sends `setup` with all its keys, then follows a script: prompts, interrupts
mid-playback (with the played prefix and elapsed ms), DTMF, raw messages, hang-up. Server
messages are validated as strictly as Twilio does (an invalid one is answered with an `error`;
ten in a row close the socket with 1007); playback is simulated by `relay_playback.Player`.
When the session ends it POSTs the signed `<Connect action>` callback (`completed` on hang-up,
`ended` + `HandoffData` after `end`, `failed` if the server dropped the socket).
"""

from __future__ import annotations

import asyncio
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from voiceagent.errors import ProtocolError
from voiceagent.protocols import conversation_relay as cr
from voiceagent.protocols.signature import compute_signature
from voiceagent.sim.relay_playback import Player, TurnRecord


@dataclass(frozen=True, slots=True)
class Say:
    """The caller says `text` (a final `prompt`) and, unless an Interrupt follows or `listen`
    is False (the next step comes at once, e.g. a prompt that supersedes the reply), listens."""

    text: str
    listen: bool = True


@dataclass(frozen=True, slots=True)
class Interrupt:
    """Barge in once `after_ms` of the current reply played, then say `text`."""

    after_ms: float
    text: str


@dataclass(frozen=True, slots=True)
class PressKey:
    """The caller presses `digit` (a `dtmf` message) and listens to the reply."""

    digit: str


@dataclass(frozen=True, slots=True)
class SendRaw:
    """Send `data` as is (to test how the server takes bad messages)."""

    data: str


@dataclass(frozen=True, slots=True)
class Pause:
    """The caller stays silent for `seconds` (real time), whatever the agent does."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Hangup:
    """The caller hangs up (the script's end implies it)."""


ScriptStep = Say | Interrupt | PressKey | SendRaw | Pause | Hangup


@dataclass(slots=True)
class RelayCallRecord:
    """Everything the simulated Twilio saw of one call."""

    call_sid: str
    twiml: str = ""
    relay_attributes: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    turns: list[TurnRecord] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    errors_sent: list[str] = field(default_factory=list)
    handoff_data: str | None = None
    session_status: str = ""
    action_twiml: str = ""
    close_code: int | None = None

    @property
    def clips(self) -> list[Any]:
        return [c for t in self.turns for c in t.clips]


class _Session:
    def __init__(self, http: aiohttp.ClientSession, base_url: str, public_url: str,
                 record: RelayCallRecord, speed: float, quiet_s: float) -> None:  # fmt: skip
        self.http, self.record, self.quiet_s = http, record, quiet_s
        self.player = Player(http, base_url, public_url, speed)
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.last_message = time.monotonic()
        self.bad_in_a_row = 0
        self.ended = asyncio.Event()
        self.end_received = False

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

    async def run_script(self, script: Sequence[ScriptStep]) -> bool:
        """Play the script; True if the caller hung up (False: the server ended first)."""
        for index, step in enumerate(script):
            if self.ended.is_set():
                return False
            follows_interrupt = index + 1 < len(script) and isinstance(script[index + 1], Interrupt)
            if isinstance(step, Say) and not step.listen:
                follows_interrupt = True
            if isinstance(step, Say):
                await self.prompt(step.text)
            elif isinstance(step, Interrupt):
                await self.interrupt(step)
            elif isinstance(step, PressKey):
                self.start_turn(f"dtmf:{step.digit}")
                await self.send({"type": "dtmf", "digit": step.digit})
            elif isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
                continue
            elif isinstance(step, SendRaw):
                await self.send(step.data)
                await asyncio.sleep(self.quiet_s)
                continue
            else:
                return True
            if not follows_interrupt:
                await self.listen()
        return not self.ended.is_set()


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
    call_sid: str | None = None,
    http: aiohttp.ClientSession | None = None,
) -> RelayCallRecord:
    """Place one relay-router call against the server at `base_url` and return its record.

    `public_url` is the server's PUBLIC_URL (what it signs and writes into TwiML and clip
    URLs); `speed` accelerates playback (clips and Twilio's TTS); `quiet_s` is how long the
    server must stay silent, playback idle, for the caller to take the reply as finished.
    """
    base_url, public_url = base_url.rstrip("/"), public_url.rstrip("/")
    record = RelayCallRecord(call_sid or _sid("CA"))
    own_http = http is None
    session_http = http or aiohttp.ClientSession()
    try:
        return await _call(session_http, base_url, public_url, auth_token, number, script,
                           caller, speed, quiet_s, record)  # fmt: skip
    finally:
        if own_http:
            await session_http.close()


async def _call(
    http: aiohttp.ClientSession, base_url: str, public_url: str, auth_token: str, number: str,
    script: Sequence[ScriptStep], caller: str, speed: float, quiet_s: float,
    record: RelayCallRecord,
) -> RelayCallRecord:  # fmt: skip
    account = _sid("AC")
    form = {
        "CallSid": record.call_sid, "AccountSid": account, "From": caller, "To": number,
        "CallStatus": "ringing", "ApiVersion": "2010-04-01", "Direction": "inbound",
    }  # fmt: skip
    status, record.twiml = await _signed_post(
        http, base_url, public_url, public_url + "/voice", form, auth_token
    )
    if status != 200:
        raise ProtocolError(f"/voice answered {status}: {record.twiml[:200]}")
    ws_url, action_url = _parse_twiml(record.twiml, record)
    public_wss = "wss://" + public_url.split("://", 1)[1]
    local_ws = ws_url.replace(public_wss, "ws://" + base_url.split("://", 1)[1], 1)
    signature = compute_signature(auth_token, ws_url, {})
    session = _Session(http, base_url, public_url, record, speed, quiet_s)
    started = time.monotonic()
    session_id = _sid("VX")
    headers = {"x-twilio-signature": signature}
    async with http.ws_connect(local_ws, headers=headers, compress=0) as ws:
        session.ws = ws
        await session.send({
            "type": "setup", "sessionId": session_id, "accountSid": account,
            "parentCallSid": "", "callSid": record.call_sid, "from": caller, "to": number,
            "forwardedFrom": "", "callType": "PSTN", "callerName": "", "direction": "inbound",
            "callStatus": "RINGING", "customParameters": record.parameters,
        })  # fmt: skip
        hung_up = await _converse(session, script)
        if hung_up:
            await ws.close()
    await asyncio.gather(*session.player.tasks, return_exceptions=True)
    if hung_up:
        record.session_status = "completed"
    else:
        record.session_status = "ended" if session.end_received else "failed"
    action_form = {**form, "SessionId": session_id, "SessionStatus": record.session_status,
                   "SessionDuration": str(round(time.monotonic() - started)),
                   "CallStatus": "completed" if hung_up else "in-progress"}  # fmt: skip
    if record.handoff_data is not None:
        action_form["HandoffData"] = record.handoff_data
    if record.session_status == "failed":
        action_form |= {"ErrorCode": "64105", "ErrorMessage": "WebSocket Ended"}
    if action_url:
        _, record.action_twiml = await _signed_post(
            http, base_url, public_url, action_url, action_form, auth_token
        )
    return record


async def _converse(session: _Session, script: Sequence[ScriptStep]) -> bool:
    """Greeting, then the script, with the receive side running; True if the caller hung up."""
    player = asyncio.create_task(session.player.run())
    receiver = asyncio.create_task(session.receive())
    try:
        greeting = session.record.relay_attributes.get("welcomeGreeting")
        session.start_turn(None)
        if greeting:
            session.player.on_text(greeting, True, time.monotonic())
        await session.listen()
        return await session.run_script(script)
    finally:
        player.cancel()
        if session.ended.is_set():
            await asyncio.gather(receiver, return_exceptions=True)
        else:
            receiver.cancel()
        await asyncio.gather(player, receiver, return_exceptions=True)
