"""The per-call rules of relay-router, without I/O: ConversationRelay messages in, commands out.

`RelayCall` decides when a reply starts (a final `prompt`, a `dtmf` worded by the number's
template, or the greeting), when a running reply is superseded by newer input or aborted by an
`interrupt`, and what the caller heard (the history keeps only that: `utteranceUntilInterrupt`
when Twilio fills it, else the sentences `durationUntilInterruptMs` covers). The mode executes
`StartReply` (one streaming Router request) and `AbortStream` (cancel it), and reports back what
it handed to Twilio (`reply_audio`) and how the reply ended (`reply_spoken` with the tool calls
it made, `reply_finished` / `reply_failed`). Tool rounds, their follow-up replies and the
agent's end of the call are `RelayTools` (session/relay_tools.py) when the number has tools.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from voiceagent.errors import ProtocolError
from voiceagent.logging import get_logger
from voiceagent.protocols import conversation_relay as cr
from voiceagent.session.call import CallSession, EndReason
from voiceagent.session.commands import (
    AbortStream,
    CallCommand,
    ReportTurns,
    SendPhone,
    StartReply,
    StopCall,
    Wake,
)
from voiceagent.session.latency import TurnTiming
from voiceagent.session.playback import PlaybackTracker
from voiceagent.session.relay_ledger import InputLedger
from voiceagent.session.relay_playout import Playout
from voiceagent.session.relay_tools import CLOSE_POLL_S, RelayTools
from voiceagent.tools.calls import ChangeTurnTaking, SwitchLanguage, ToolCall, ToolResult
from voiceagent.tools.turn_taking import relay_turn_taking_config

log = get_logger("voiceagent.relay")

GREETING_INSTRUCTIONS = "Repeat the following greeting exactly as given."
TEXT_MS_PER_CHAR = 1000 / 15
"""Rough speaking time of ConversationRelay's TTS, to map an interrupt's ms onto tokens."""


class RelayCall:
    """One relay-router call's decisions (see the module docstring)."""

    def __init__(
        self, call: CallSession, *, instructions: str, dtmf_template: str, apology: str,
        tools: bool = False, ledger: InputLedger | None = None,
    ) -> None:  # fmt: skip
        self.call = call
        self.ledger = ledger or InputLedger()
        self.tools = RelayTools(call) if tools else None
        self.tracker = PlaybackTracker(call.history, confirm_by_marks=False)
        self.instructions = instructions
        self.dtmf_template = dtmf_template
        self.apology = apology
        self._mark: str | None = None  # the fingerprint of the input being handled
        self.voice: str | None = None  # the Router voice `set_language` chose
        self.reply: str | None = None  # the latest reply's response id
        self.running = False  # its Router request is still streaming
        self._seq = 0

    # -- events ---------------------------------------------------------------------------------
    def leave_message(self, message: str, now: float) -> list[CallCommand]:
        """A voicemail leg: say ``message`` (as the greeting is said), then end the call once
        it was heard."""
        if self.tools is None:
            self.tools = RelayTools(self.call)
        self.tools.end_after_reply(now)
        return self.greet(message)

    def greet(self, greeting: str) -> list[CallCommand]:
        """Open the call with the greeting, spoken in the agent's voice."""
        messages = (
            {"role": "system", "content": GREETING_INSTRUCTIONS},
            {"role": "user", "content": greeting},
        )
        timing = self.call.latency.start_turn(self.call.started, "greeting")
        return [self._start(messages, timing, greeting=True)]

    def receive_phone(self, msg: cr.RelayInbound, now: float) -> list[CallCommand]:
        """A ConversationRelay message after `setup`. ProtocolError for a repeated `setup`."""
        if isinstance(msg, cr.Prompt):
            if not msg.last or self._replayed("speech", msg.voice_prompt):
                return []
            return self._user_input(msg.voice_prompt, now)
        if isinstance(msg, cr.Interrupt):
            return self._interrupt(
                msg.duration_until_interrupt_ms, msg.utterance_until_interrupt or None, now
            )
        if isinstance(msg, cr.Dtmf):
            if self._replayed("dtmf", msg.digit):
                return []
            self.call.counters.dtmf += 1
            log.info("dtmf_received")  # never the digit: PINs and card numbers
            return self._user_input(self.dtmf_template.replace("{digit}", msg.digit), now)
        if isinstance(msg, cr.ConfigUpdated):
            self._config_updated(msg.fields)
        elif isinstance(msg, cr.Info) and msg.name in ("configUpdated", "config-updated"):
            self._config_updated({"value": msg.value})
        elif isinstance(msg, cr.Error):
            log.warning("relay_error_received", description=msg.description[:300])
        elif isinstance(msg, cr.Setup):
            raise ProtocolError("setup repeated")
        return []

    def resume(self, now: float) -> list[CallCommand]:
        """A reconnected leg starts: answer again the input whose reply had not finished."""
        if self.ledger.pending is None:
            return []
        log.info("relay_reply_resumed")
        messages = ({"role": "system", "content": self.instructions}, *self.call.history.messages())
        timing = self.call.latency.start_turn(now, "turn")
        choice = self.tools.tool_choice if self.tools is not None else None
        return [self._start(messages, timing, tool_choice=choice)]

    def _replayed(self, kind: str, value: str) -> bool:
        """Whether this input replays one handled before a reconnect (then it is dropped)."""
        self._mark = self.ledger.admit(kind, value)
        if self._mark is None:
            log.info("relay_replay_skipped", kind=kind)
        return self._mark is None

    def _config_updated(self, fields: dict[str, object]) -> None:
        """Twilio applied a change or failed over: name the provider in the log and record."""
        provider = next(
            (str(v) for k, v in fields.items() if "provider" in k.lower() and v), None
        )  # fmt: skip
        if provider is None and isinstance(fields.get("value"), str):
            provider = str(fields["value"])[:60] or None
        self.call.counters.provider_switches += provider is not None
        if provider is not None:
            self.call.providers.append(provider[:40])
        log.info("relay_config_updated", provider=provider, keys=sorted(fields)[:10])

    def caller_left(self, reason: str) -> list[CallCommand]:
        """The caller's side closed: stop the running reply and its tools."""
        self.call.end(EndReason.CALLER_HANGUP, reason)
        now = time.monotonic()
        commands = self.tools.cancel(now) if self.tools is not None else []
        if self.running and self.reply is not None:
            commands.append(AbortStream(self.reply))
        return [*commands, StopCall()]

    # -- what the mode reports ------------------------------------------------------------------
    def upstream_audio(self, now: float) -> None:
        """The Router stream carried audio (or text) of the current reply."""
        self.call.latency.upstream_byte(now)

    def reply_audio(self, response_id: str, duration_ms: float, text: str, now: float) -> None:
        """Audio (a clip's `play`, or a `text` token) of `response_id` was handed to Twilio."""
        self.call.latency.audio_out(now)
        if duration_ms or text:
            self.tracker.audio_sent(response_id, duration_ms, text)

    def awaits_first_audio(self, response_id: str) -> bool:
        """Whether nothing of `response_id`'s turn has gone out yet: the next clip is the
        turn's first, and its fetch times the turn (`clip_fetched` with `first`)."""
        timing = self._timing_of(response_id)
        return timing is not None and timing.first_audio_out is None

    def clip_announced(self, response_id: str, now: float) -> None:
        """A clip's `play` of `response_id` went out (its audio follows when Twilio fetches
        it)."""
        if self.playout is not None:
            self.playout.clip_announced()
        self.reply_audio(response_id, 0.0, "", now)

    def clip_fetched(self, response_id: str, duration_ms: float, first: bool, now: float) -> None:
        """Twilio fetched a clip of `response_id` lasting `duration_ms` (the turn's first clip:
        `first`, from `clip_announced`)."""
        timing = self._timing_of(response_id)
        if first and timing is not None and timing.clip_fetched is None:
            timing.clip_fetched = now
        if self.playout is not None:
            self.playout.clip_fetched(duration_ms, now)

    def wants_fetch_events(self, first: bool) -> bool:
        """Whether `clip_fetched` needs to hear of a clip (each fetch watched costs a little)."""
        return first or self.playout is not None

    def text_spoken(self, response_id: str, token: str, now: float) -> None:
        """A `text` token of `response_id` went to ConversationRelay's TTS."""
        ms = len(token) * TEXT_MS_PER_CHAR
        self.reply_audio(response_id, ms, token, now)
        if self.playout is not None:
            self.playout.spoken(ms, now)

    @property
    def playout(self) -> Playout | None:
        """The estimate of when the caller has heard everything (kept when the number has
        tools: the agent's end of the call waits for it)."""
        return self.tools.playout if self.tools is not None else None

    def reply_spoken(
        self, response_id: str, calls: list[ToolCall], now: float
    ) -> list[CallCommand]:
        """The reply's stream ended normally, having made `calls` (usually none)."""
        tools = self.tools
        if response_id == self.reply and not calls:
            self.ledger.pending = None  # answered in full
        if tools is None or response_id != self.reply or not self.running:
            return []  # no tools, or superseded meanwhile
        if calls:
            return tools.calls_made(response_id, calls, now)
        return [Wake(CLOSE_POLL_S)] if tools.closing is not None else []

    def tool_finished(self, result: ToolResult, now: float) -> list[CallCommand]:
        """A call of the running round produced its result; the last one asks the follow-up."""
        tools, timing = self.tools, self._timing_of(self.reply or "")
        switch: list[CallCommand] = []
        if tools is not None and result.call.call_id in tools.pending:
            switch = self._session_change(result)
        if tools is None or not tools.result(result, now, timing) or timing is None:
            return switch
        messages = ({"role": "system", "content": self.instructions}, *self.call.history.messages())
        return [*switch, self._start(messages, timing, tool_choice=tools.tool_choice)]

    def _session_change(self, result: ToolResult) -> list[CallCommand]:
        """`set_language`: Twilio's STT and TTS switch, and the Router voice of what follows;
        `set_turn_taking`: ConversationRelay's mid-call `config` message."""
        action = result.action
        if not result.ok:
            return []
        if isinstance(action, ChangeTurnTaking):
            message = relay_turn_taking_config(action.preset)
            log.info("turn_taking_changed", preset=action.preset.name, sent=message is not None)
            return [SendPhone(message)] if message is not None else []
        if not isinstance(action, SwitchLanguage):
            return []
        self.voice = action.voice or self.voice
        self.call.languages.append(action.code)
        log.info("language_switched", language=action.code)
        language = cr.Language(tts_language=action.code, transcription_language=action.code)
        return [SendPhone(cr.dump(language))]

    def wake(self, now: float) -> list[CallCommand]:
        """A `Wake` the machine asked for is due (the agent's end of the call)."""
        return self.tools.wake(now, replying=self.running) if self.tools is not None else []

    def reply_finished(self, response_id: str) -> None:
        self.tracker.response_finished(response_id)
        if response_id == self.reply and not (self.tools and self.tools.pending):
            self.running = False

    def reply_failed(self, response_id: str, kind: str) -> list[CallCommand]:
        """The Router failed mid-reply: what was received is played; then the apology."""
        self.call.counters.upstream_errors += 1
        timing = self._timing_of(response_id)
        if timing is not None:
            timing.failed = kind
        self.reply_finished(response_id)
        if response_id != self.reply:
            return []
        self.ledger.pending = None
        self.call.history.open_assistant(f"{response_id}-apology").text = self.apology
        apology = SendPhone(cr.dump(cr.Text(token=self.apology, last=True)))
        closing = self.tools is not None and self.tools.closing is not None
        return [apology, Wake(CLOSE_POLL_S)] if closing else [apology]

    # -- rules ------------------------------------------------------------------------------------
    def _user_input(self, text: str, now: float) -> list[CallCommand]:
        if self.tools is not None and self.tools.closing is not None:
            log.info("input_while_closing")  # the agent ended the call: no new reply
            return []
        commands: list[CallCommand] = []
        if self.running:
            commands += self._interrupt(None, None, now, superseded=True)
        self.call.counters.turns += 1
        self.call.history.add_user(text)
        messages = ({"role": "system", "content": self.instructions}, *self.call.history.messages())
        user_text = text if self.call.record_transcripts else ""
        timing = self.call.latency.start_turn(now, "turn", user_text)
        choice = None
        if self.tools is not None:
            self.tools.rounds = 0
            choice = self.tools.tool_choice
        commands += [ReportTurns(), self._start(messages, timing, tool_choice=choice)]
        self.ledger.pending = self._mark
        return commands

    def _start(
        self, messages: tuple[dict[str, Any], ...], timing: TurnTiming, *,
        greeting: bool = False, tool_choice: Literal["auto", "none"] | None = None,
    ) -> StartReply:  # fmt: skip
        if self.reply is not None:
            self.tracker.forget(self.reply)
        self._seq += 1
        self.reply = response_id = f"turn-{self._seq}"
        self.running = True
        self.tracker.begin_response(response_id)
        timing.response_id = response_id
        return StartReply(response_id, messages, greeting, tool_choice)

    def _interrupt(
        self, heard_ms: int | None, heard_text: str | None, now: float, superseded: bool = False
    ) -> list[CallCommand]:
        """Stop the current reply (abort its stream if running) and cut it to what was heard."""
        before = self.tracker.barge_ins
        aborts = self.tracker.interrupted(heard_ms, heard_text)
        running, reply = self.running, self.reply
        if self.tracker.barge_ins == before and not running:
            log.debug("interrupt_ignored", heard_ms=heard_ms)  # nothing of ours was playing
            return []
        self.call.counters.barge_ins = self.tracker.barge_ins
        self.call.latency.barge_in(now, now)
        log.info("barge_in", superseded=superseded, heard_ms=heard_ms, aborted=running)
        commands: list[CallCommand] = []
        if self.tools is not None:
            self.tools.playout.interrupted(now)
            commands += self.tools.cancel(now)
            if self.tools.closing is not None:
                commands.append(Wake(CLOSE_POLL_S))
        if not superseded:
            self.ledger.pending = None  # the caller barged in: that reply is over
        if (running or aborts) and reply is not None:
            self.running = False
            commands.append(AbortStream(reply))
        return commands

    def _timing_of(self, response_id: str) -> TurnTiming | None:
        for timing in reversed(self.call.latency.turns):
            if timing.response_id == response_id:
                return timing
        return None
