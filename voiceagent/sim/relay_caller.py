"""A simulated ConversationRelay caller: Twilio's side of a relay-router call, over real sockets.

``place_call`` POSTs the signed ``/voice`` webhook, reads the TwiML, opens the signed
WebSocket, sends ``setup`` with all its keys, then runs the script (``relay_socket.py``) while
playback is simulated (``relay_playback.Player``). When the session ends it POSTs the signed
``<Connect action>`` callback (``completed`` on hang-up, ``ended`` + ``HandoffData`` after
``end``, ``failed`` if the socket broke) and, like Twilio, runs the TwiML it gets back: a fresh
``<ConversationRelay>`` (a reconnect) continues the script. With ``applicationReconnect="true"``
a broken socket (a ``Drop`` step, or the server's side lost without a close frame) is instead
reopened to the same URL with no callback: a new ``setup`` of the same call, then (the
at-least-once reading of docs/protocol-updates-2026.md, unless ``replay_last=False``) the last
input sent before the break, then the rest of the script.
"""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET

import aiohttp

from voiceagent.errors import ProtocolError
from voiceagent.sim.relay_playback import Player, RelayCallRecord
from voiceagent.sim.relay_socket import Outcome, RelaySession
from voiceagent.sim.script import Script
from voiceagent.sim.webhooks import SimTarget, Webhooks, call_form, new_sid

MAX_RECONNECTS = 3
"""Reconnects per call the simulated Twilio makes (the real limit is not documented)."""


async def place_call(
    target: SimTarget,
    to: str,
    script: Script,
    *,
    from_: str = "+14155550100",
    call_sid: str | None = None,
    http: aiohttp.ClientSession | None = None,
    bad_signature: bool = False,
    twiml: str | None = None,
    speed: float = 1.0,
    quiet_s: float = 0.3,
    replay_last: bool = True,
    direction: str = "inbound",
) -> RelayCallRecord:
    """Place one ConversationRelay call and return what the simulated Twilio saw.

    ``twiml``, when given, is TwiML Twilio already executes for this call (e.g. what an earlier
    ``<Connect action>`` answered): the call starts from it instead of ``/voice``. ``speed``
    accelerates playback (clips and Twilio's TTS); ``quiet_s`` is how long the server must stay
    silent, playback idle, for the caller to take a reply as finished.
    """
    session = http or aiohttp.ClientSession()
    try:
        sid = call_sid or new_sid("CA")
        form = call_form(sid, to, from_, new_sid("AC"), direction)
        hooks = Webhooks(target, session, form, bad_signature)
        record = RelayCallRecord(call_sid=sid, to=to, twiml=twiml or "")
        if twiml is None:
            record.webhook_status, record.twiml = await hooks.voice()
        if record.webhook_status not in (0, 200):
            raise ProtocolError(f"/voice answered {record.webhook_status}: {record.twiml[:200]}")
        await _call(hooks, record, script, speed, quiet_s, replay_last)
        return record
    finally:
        if http is None:
            await session.close()


async def _call(
    hooks: Webhooks, record: RelayCallRecord, script: Script, speed: float, quiet_s: float,
    replay_last: bool,
) -> None:  # fmt: skip
    started = time.monotonic()
    replay: list[dict[str, object]] = []
    while True:
        record.sessions += 1
        session_id = new_sid("VX")
        player = Player(hooks.http, hooks.target.base_url, hooks.target.public_url, speed)
        relay = RelaySession(record, player, quiet_s)
        outcome, script = await _session(hooks, relay, session_id, script, replay)
        if outcome == "server" and relay.lost():
            outcome = "lost"
        reconnect = record.relay_attributes.get("applicationReconnect") == "true"
        if reconnect and outcome in ("drop", "lost") and record.reconnects < MAX_RECONNECTS:
            record.reconnects += 1  # Twilio keeps the call and reopens the socket
            replay = record.inputs_sent[-1:] if replay_last else []
            continue
        record.closed_by = "server" if outcome in ("server", "lost") else "caller"
        action_twiml = await _report_end(hooks, relay, session_id, outcome, started)
        if outcome != "drop" or "<ConversationRelay " not in action_twiml:
            return
        record.twiml = action_twiml  # Twilio runs the action's TwiML: a reconnect


def _follow_twiml(record: RelayCallRecord) -> None:
    """Read ``<Connect action><ConversationRelay url>`` with its attributes and parameters."""
    root = ET.fromstring(record.twiml)
    connect = root.find("Connect")
    relay = connect.find("ConversationRelay") if connect is not None else None
    if connect is None or relay is None:
        raise ProtocolError(f"TwiML has no <Connect><ConversationRelay>: {record.twiml[:200]}")
    record.relay_attributes = dict(relay.attrib)
    record.parameters = {p.get("name", ""): p.get("value", "") for p in relay.findall("Parameter")}
    record.socket_url, record.action_url = relay.get("url", ""), connect.get("action", "")


async def _session(
    hooks: Webhooks, relay: RelaySession, session_id: str, script: Script,
    replay: list[dict[str, object]],
) -> tuple[Outcome, Script]:  # fmt: skip
    """One ConversationRelay session of the call, from the TwiML in ``record.twiml``."""
    record = relay.record
    _follow_twiml(record)
    headers = {"x-twilio-signature": hooks.sign(record.socket_url, {})}
    local = hooks.target.local(record.socket_url)
    async with hooks.http.ws_connect(local, headers=headers, compress=0) as ws:
        relay.ws = ws
        form = hooks.form
        await relay.send({
            "type": "setup", "sessionId": session_id, "accountSid": form["AccountSid"],
            "parentCallSid": "", "callSid": record.call_sid, "from": form["From"],
            "to": form["To"], "forwardedFrom": "", "callType": "PSTN", "callerName": "",
            "direction": form["Direction"], "callStatus": "RINGING",
            "customParameters": record.parameters,
        })  # fmt: skip
        for message in replay:  # buffered while the socket was down
            record.replayed += 1
            await relay.send(dict(message))
        outcome, rest = await _converse(relay, script)
        if outcome != "server":
            await ws.close(code=1000 if outcome == "hangup" else 1011)
    await asyncio.gather(*relay.player.tasks, return_exceptions=True)
    return outcome, rest


async def _report_end(
    hooks: Webhooks, relay: RelaySession, session_id: str, outcome: Outcome, started: float
) -> str:
    """POST the signed ``<Connect action>`` callback as Twilio does; returns its TwiML."""
    record = relay.record
    hung_up = outcome == "hangup"
    if hung_up:
        record.session_status = "completed"
    else:
        record.session_status = "ended" if relay.end_received else "failed"
    fields = {
        "SessionId": session_id, "SessionStatus": record.session_status,
        "SessionDuration": str(round(time.monotonic() - started)),
        "CallStatus": "completed" if hung_up else "in-progress",
    }  # fmt: skip
    if record.handoff_data is not None:
        fields["HandoffData"] = record.handoff_data
    if record.session_status == "failed":
        fields |= {"ErrorCode": "64105", "ErrorMessage": "WebSocket Ended"}
    if record.action_url:
        record.action_status, record.action_twiml = await hooks.action(record.action_url, **fields)
    return record.action_twiml or ""


async def _converse(relay: RelaySession, script: Script) -> tuple[Outcome, Script]:
    """The script, with the receive side and playback running (see ``run_script``)."""
    player = asyncio.create_task(relay.player.run())
    receiver = asyncio.create_task(relay.receive())
    try:
        if relay.record.sessions > 1 and relay.record.turns:  # a reply may resume
            relay.player.new_turn(relay.record.turns[-1])
        if relay.record.sessions == 1:  # the greeting is turn 0; a reconnect is not greeted
            relay.start_turn(None)
            greeting = relay.record.relay_attributes.get("welcomeGreeting")
            if greeting:
                relay.player.on_text(greeting, True, time.monotonic())
        return await relay.run_script(script)
    finally:
        player.cancel()
        if relay.ended.is_set():
            await asyncio.gather(receiver, return_exceptions=True)
        else:
            receiver.cancel()
        await asyncio.gather(player, receiver, return_exceptions=True)
