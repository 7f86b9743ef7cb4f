"""The two directions of one relay-router call, after `setup`.

The reader parses every ConversationRelay message: a final `prompt` or a `dtmf` queues a user
input (superseding a reply still being generated), an `interrupt` aborts the reply and cuts the
history to what was heard; anything else is logged (bad messages are counted and ignored).
Each turn (one Router request with the whole history) runs in a task of the call's TaskGroup
that the reader holds, so it can cancel it: cancelling closes the Router request and sends
nothing more of that turn; at most one turn runs, a new one first waits for a superseded one
to finish cleaning up. When the caller's side ends, the running turn is cancelled.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Literal

from voiceagent.config import CallPlan
from voiceagent.errors import ProtocolError, UpstreamError
from voiceagent.logging import get_logger
from voiceagent.modes.relay_turns import ClipSpeaker, TextSpeaker
from voiceagent.protocols.conversation_relay import (
    Dtmf,
    Error,
    Interrupt,
    Prompt,
    RelayOutbound,
    Setup,
    Text,
    dump,
    parse_inbound,
)
from voiceagent.protocols.inworld_router import AudioRequest, ChatMessage, ChatRequest
from voiceagent.runtime import Services
from voiceagent.session.call import CallSession, EndReason
from voiceagent.session.commands import AbortStream
from voiceagent.session.history import Turn
from voiceagent.session.latency import TurnTiming
from voiceagent.session.playback import PlaybackTracker
from voiceagent.transport.channel import Channel, ChannelClosed

log = get_logger("voiceagent.relay")

GREETING_INSTRUCTIONS = "Repeat the following greeting exactly as given."


@dataclass(frozen=True, slots=True)
class UserInput:
    kind: Literal["greeting", "turn"]
    text: str
    received: float


class RelayConversation:
    """Runs one call's conversation over an accepted ConversationRelay channel."""

    def __init__(
        self, phone: Channel, services: Services, plan: CallPlan, call: CallSession
    ) -> None:
        self._phone = phone
        self._services = services
        self._plan = plan
        self._call = call
        self._tracker = PlaybackTracker(call.history, confirm_by_marks=False)
        self._group: asyncio.TaskGroup | None = None
        self._turn: asyncio.Task[None] | None = None
        self._response_id: str | None = None
        self._seq = 0
        if plan.relay.voice_source == "twilio":
            self._speaker: ClipSpeaker | TextSpeaker = TextSpeaker(
                services, call, self._tracker, self.send
            )
        else:
            self._speaker = ClipSpeaker(services, plan, call, self._tracker, self.send)

    async def run(self, greet: bool) -> None:
        """Serve until the caller's side closes: this task reads, each turn is a group task."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            if greet:
                self._start_turn(
                    UserInput("greeting", self._plan.agent.greeting, self._call.started)
                )
            try:
                await self._read()
            finally:
                if self._turn is not None:
                    self._turn.cancel()

    async def send(self, message: RelayOutbound) -> None:
        try:
            await self._phone.send(dump(message))
        except ChannelClosed:
            return
        self._call.counters.frames_out += 1

    # -- caller → us ---------------------------------------------------------------------------
    async def _read(self) -> None:
        while (raw := await self._phone.receive()) is not None:
            self._call.counters.frames_in += 1
            self._on_message(raw)
        self._call.end(EndReason.CALLER_HANGUP, self._phone.close_reason)

    def _on_message(self, raw: str | bytes) -> None:
        try:
            message = parse_inbound(raw)
        except ProtocolError as exc:
            self._call.counters.bad_frames += 1
            log.warning("relay_message_invalid", error=str(exc)[:300])
            return
        if isinstance(message, Prompt):
            if message.last:
                self._user_input(message.voice_prompt)
        elif isinstance(message, Interrupt):
            self._barge_in(message.duration_until_interrupt_ms, message.utterance_until_interrupt)
        elif isinstance(message, Dtmf):
            self._call.counters.dtmf += 1
            log.info("dtmf_received", digit=message.digit)
            self._user_input(self._plan.relay.dtmf_template.replace("{digit}", message.digit))
        elif isinstance(message, Error):
            log.warning("relay_error_received", description=message.description[:300])
        elif isinstance(message, Setup):
            self._call.counters.bad_frames += 1
            log.warning("relay_setup_repeated")
        else:
            log.debug("relay_info", name=message.name, value=message.value)

    def _user_input(self, text: str) -> None:
        now = time.monotonic()
        turn = self._turn
        if turn is not None and not turn.done() and not turn.cancelling():
            self._barge_in(None, None, superseded=True)
        self._start_turn(UserInput("turn", text, now))

    def _barge_in(
        self, heard_ms: int | None, heard_text: str | None, superseded: bool = False
    ) -> None:
        """Stop the current reply (abort its stream if running) and cut it to what was heard."""
        detected = time.monotonic()
        before = self._tracker.barge_ins
        commands = self._tracker.interrupted(heard_ms, heard_text or None)
        running = self._turn is not None and not self._turn.done()
        aborts = any(isinstance(c, AbortStream) for c in commands)
        if (running or aborts) and self._turn is not None:
            self._turn.cancel()
        if self._tracker.barge_ins == before and not running:
            log.debug("interrupt_ignored", heard_ms=heard_ms)  # nothing of ours was playing
            return
        self._call.counters.barge_ins = self._tracker.barge_ins
        self._call.latency.barge_in(detected, time.monotonic())
        log.info("barge_in", superseded=superseded, heard_ms=heard_ms, aborted=running)

    def _start_turn(self, item: UserInput) -> None:
        """Record the input and start the agent's answer at once, as a group task.

        History and playback state change here, synchronously, so a barge-in or a newer
        prompt always sees them; no hand-off through a queue (one loop cycle less between
        the prompt and the Router request).
        """
        assert self._group is not None
        agent = self._plan.agent
        if self._response_id is not None:
            self._tracker.forget(self._response_id)
        self._seq += 1
        response_id = self._response_id = f"turn-{self._seq}"
        if item.kind == "greeting":
            messages = [ChatMessage(role="system", content=GREETING_INSTRUCTIONS),
                        ChatMessage(role="user", content=item.text)]  # fmt: skip
        else:
            self._call.counters.turns += 1
            self._call.history.add_user(item.text)
            messages = [ChatMessage(role="system", content=agent.instructions)]
            messages += [ChatMessage(**m) for m in self._call.history.messages()]
        turn = self._tracker.begin_response(response_id).turn
        timing = self._call.latency.start_turn(item.received, item.kind, item.text)
        request = ChatRequest(
            model=agent.llm_model, messages=messages, stream=True, temperature=agent.temperature,
            audio=None if self._plan.relay.voice_source == "twilio"
            else AudioRequest(voice=agent.voice, model=agent.tts_model),
        )  # fmt: skip
        answer = self._answer(response_id, request, timing, turn, previous=self._turn)
        self._turn = self._group.create_task(answer)

    async def _answer(
        self,
        response_id: str,
        request: ChatRequest,
        timing: TurnTiming,
        turn: Turn,
        previous: asyncio.Task[None] | None,
    ) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])  # a superseded turn finishes its clean-up first
        try:
            await self._speaker.speak(response_id, request, timing)
        except UpstreamError as exc:
            self._call.counters.upstream_errors += 1
            timing.failed = exc.kind.value
            log.warning(
                "router_failed", kind=exc.kind.value, status=exc.status, body=exc.body[:500],
                error=str(exc)[:300], turn=timing.index,
            )  # fmt: skip
            await self.send(Text(token=self._plan.agent.apology, last=True))
        finally:
            self._tracker.response_finished(response_id)
            timing.agent_text = turn.text
            self._services.sink.turn_finished(self._call, timing)
