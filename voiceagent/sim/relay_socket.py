"""One ConversationRelay WebSocket session of a simulated call, as Twilio runs it
(docs/protocols.md, Twilio §2).

Server messages are validated as strictly as Twilio does (an invalid one is answered with an
``error``; ten in a row close the socket with 1007); ``play`` and ``text`` go to the playback
model (``relay_playback.Player``). The script's steps become ``prompt``, ``dtmf`` and
``interrupt`` messages. Caller input during agent playback interrupts it as the TwiML's
``interruptible`` allows (``welcomeGreetingInterruptible`` for Twilio's own greeting) and is
delivered as a ``prompt`` when it interrupted or ``reportInputDuringAgentSpeech`` allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Literal

import aiohttp
import orjson

from voiceagent.errors import ProtocolError
from voiceagent.protocols import conversation_relay as cr
from voiceagent.sim.relay_playback import Player, RelayCallRecord, TurnRecord
from voiceagent.sim.script import Drop, Listen, Pause, PressKey, Say, Script, SendRaw

Outcome = Literal["hangup", "drop", "server", "lost"]
ABNORMAL_CLOSURE = 1006  # the socket broke: no close frame came
_ALLOWS = {"any": {"speech", "dtmf"}, "true": {"speech", "dtmf"}, "speech": {"speech"},
           "dtmf": {"dtmf"}}  # fmt: skip


def allows(attribute: str, kind: Literal["speech", "dtmf"]) -> bool:
    """Whether a ConversationRelay input setting (``none``/``dtmf``/``speech``/``any``, legacy
    ``true``/``false``) covers input of ``kind``."""
    return kind in _ALLOWS.get(attribute.lower(), set())


class RelaySession:
    """Twilio's side of one ConversationRelay socket; fills the call's ``RelayCallRecord``."""

    def __init__(self, record: RelayCallRecord, player: Player, quiet_s: float) -> None:
        self.record, self.player, self.quiet_s = record, player, quiet_s
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.last_message = time.monotonic()
        self.bad_in_a_row = 0
        self.ended = asyncio.Event()
        self.end_received = False

    async def send(self, payload: dict[str, Any] | str | bytes) -> None:
        assert self.ws is not None
        if self.ws.closed:
            return
        if isinstance(payload, bytes):
            await self.ws.send_bytes(payload)
        else:
            await self.ws.send_str(payload if isinstance(payload, str) else _dumps(payload))

    async def receive(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            await self.on_message(msg.data, time.monotonic())
        self.record.close_code = self.ws.close_code
        self.ended.set()

    async def on_message(self, raw: str, now: float) -> None:
        """One message from the server, read at `now`."""
        self.last_message = now
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
            self.player.on_play(message.source, now, bool(message.preemptible))
        elif isinstance(message, cr.Text):
            self.player.on_text(message.token, message.last, now, bool(message.preemptible))
        elif isinstance(message, cr.Config | cr.Language):  # applied: Twilio confirms
            changed = message.model_dump(by_alias=True, exclude_none=True, exclude={"type"})
            self.record.applied |= changed  # rules the rest of the session, reconnects too
            await self.send({"type": "configUpdated", **changed})
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

    async def run_script(self, script: Script) -> tuple[Outcome, Script]:
        """Play the script: how it ended, and the steps not played yet."""
        for index, step in enumerate(script):
            if self.ended.is_set():
                return "server", script[index:]
            if isinstance(step, Say):
                await self.caller_input("speech", step.text)
            elif isinstance(step, PressKey):
                await self.caller_input("dtmf", step.digit)
            elif isinstance(step, Listen):
                await self.listen(step)
            elif isinstance(step, Pause):  # an `end` from the server ends the session at once
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.ended.wait(), step.ms / 1000)
            elif isinstance(step, SendRaw):
                await self.send(step.data)
            elif isinstance(step, Drop):
                return "drop", script[index + 1 :]
            else:
                return "hangup", ()
        return ("server", ()) if self.ended.is_set() else ("hangup", ())

    def lost(self) -> bool:
        """The server's side broke (no `end`, no close frame): Twilio's reconnect case."""
        return not self.end_received and self.record.close_code in (None, ABNORMAL_CLOSURE)

    async def caller_input(self, kind: Literal["speech", "dtmf"], value: str) -> None:
        """Speech or a key press: barge in if the agent is playing, then deliver it."""
        interrupted = not self.player.idle and allows(self._interruptible(), kind)
        if interrupted:
            heard_ms, heard_text = self.player.stop()
            await self.send({"type": "interrupt", "utteranceUntilInterrupt": heard_text,
                             "durationUntilInterruptMs": round(heard_ms)})  # fmt: skip
        elif not self.player.idle and not allows(self._reported(), kind):
            self.record.unreported_inputs.append(value)
            return
        if kind == "speech":
            self.start_turn(value)
            message = {"type": "prompt", "voicePrompt": value, "lang": "en-US", "last": True}
        else:
            self.start_turn(f"dtmf:{value}")
            message = {"type": "dtmf", "digit": value}
        self.record.inputs_sent.append(message)
        await self.send(message)

    def _interruptible(self) -> str:
        attributes = self.record.relay_attributes
        turn = self.player.turn
        if turn is not None and turn.prompt is None and "welcomeGreeting" in attributes:
            return attributes.get("welcomeGreetingInterruptible", "any")
        return self._setting("interruptible", "any")

    def _reported(self) -> str:
        return self._setting("reportInputDuringAgentSpeech", "none")

    def _setting(self, name: str, default: str) -> str:
        """A session setting: as a mid-call `config` changed it, else as the TwiML set it."""
        if name in self.record.applied:
            return str(self.record.applied[name])
        return self.record.relay_attributes.get(name, default)

    async def listen(self, step: Listen) -> None:
        """Until the agent is quiet (its reply started, played out, the server silent for
        ``quiet_s``) or ``min_heard_ms`` of its reply played."""
        deadline = time.monotonic() + step.timeout_ms / 1000
        if step.until == "playing":
            while self.player.elapsed_ms < step.min_heard_ms and time.monotonic() < deadline:
                if self.ended.is_set():
                    return
                await asyncio.sleep(0.002)
            return
        turn = self.player.turn
        while turn is not None and not (turn.clips or turn.first_text_at or turn.text):
            if time.monotonic() > deadline or self.ended.is_set():
                return
            await asyncio.sleep(0.01)
        while not self.ended.is_set():
            quiet = time.monotonic() - self.last_message >= self.quiet_s
            if quiet and self.player.idle:
                return
            await asyncio.sleep(0.02)


def _dumps(payload: dict[str, Any]) -> str:
    return orjson.dumps(payload).decode()
