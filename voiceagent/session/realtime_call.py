"""The per-call rules of realtime-passthrough, without I/O: events in, frames and commands out.

`RealtimeCall` is the call's protocol object in the websockets sense. The mode's two pump loops
feed it what arrives (Twilio frames, Inworld events) and send what it returns, in order:

- caller audio is batched into appends of exactly ``append_ms``;
- agent audio is forwarded as it arrives, with a mark after the first chunk of each response
  and then every ``mark_ms`` of audio (and at the end of the response), so the tracker knows
  what the caller heard to within ``mark_ms``;
- barge-in (``speech_started``) yields, urgent control first: Twilio ``clear``, then
  ``response.cancel`` only while a response is active, then ``conversation.item.truncate`` at
  the heard milliseconds; late audio of the cancelled response is dropped;
- the agent greets once the session is configured (``session.updated``);
- a reconnect gap's filler (session/gap_filler.py) is cleared when the new session's audio
  starts or the caller barges in;
- a DTMF key reaches the model as a user message worded by the number's template;
- tools (function calls, their follow-up, the agent ending or transferring the call) are
  decided by ``RealtimeTools`` (session/realtime_tools.py) when the number has any;
- errors: benign races are ignored, session-level errors end the call, untyped frames (e.g.
  ``{"errorType": "SESSION_RESOURCES_EXHAUSTED"}``) are logged and counted but never fatal on
  their own: they only classify a close that follows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from voiceagent.audio import ulaw_ms
from voiceagent.errors import ProtocolError, UpstreamFailure
from voiceagent.logging import get_logger
from voiceagent.protocols import inworld_realtime as rt
from voiceagent.protocols import twilio_media as tm
from voiceagent.session.call import CallSession, EndReason
from voiceagent.session.commands import (
    CallCommand,
    ClearPlayback,
    ReportTurns,
    SendPhone,
    SendUpstream,
    StopCall,
    Wake,
)
from voiceagent.session.gap_filler import FillerStep, GapFiller
from voiceagent.session.playback import PlaybackTracker
from voiceagent.session.realtime_tools import CLOSE_POLL_S, RealtimeTools
from voiceagent.session.realtime_wire import (
    BENIGN_ERROR_CODES,
    CAPACITY_ERROR_TYPES,
    AppendChunker,
    barge_in_frames,
    error_is_fatal,
)
from voiceagent.tools.calls import ToolResult

log = get_logger("voiceagent.realtime")

_NONE: tuple[str, ...] = ()


class RealtimeCall:
    """One realtime-passthrough call's decisions (see the module docstring)."""

    def __init__(
        self,
        call: CallSession,
        *,
        append_ms: int,
        mark_ms: float,
        greeting: Sequence[str] = (),
        tools: bool = False,
        dtmf_template: str = "The caller pressed the key {digit}.",
        vad: str = "semantic_vad",
        filler: GapFiller | None = None,
    ) -> None:
        self.call = call
        self.filler = filler
        self.tracker = PlaybackTracker(call.history)
        self.tools = RealtimeTools(call, self.tracker, vad) if tools else None
        self.dtmf_template = dtmf_template
        self._reply_after_response = False  # a key press waits for the active response
        self.chunker = AppendChunker(append_ms)
        self.mark_ms = mark_ms
        self.greeting = tuple(greeting)
        self.session_ready = False
        self.active_response: str | None = None
        self.pending_text = ""
        self.stale_deltas = 0
        self.capacity_signal: str | None = None
        self._unmarked_ms = 0.0
        self._marked_response: str | None = None
        self._wake_when_ready = False
        if self.greeting:
            call.latency.start_turn(call.started, "greeting")

    def session_changes(self) -> tuple[str, ...]:
        """The partial `session.update`s the call made mid-call (a new session needs them)."""
        return tuple(self.tools.session_changes.values()) if self.tools is not None else ()

    def leave_message(self, now: float) -> None:
        """A voicemail leg: the greeting frames carry the message; once it was heard the call
        ends (the tools' closing rule, polled from the session's start)."""
        if self.tools is None:
            self.tools = RealtimeTools(self.call, self.tracker)
        self.tools.end_after_reply(now)
        self._wake_when_ready = True

    # -- Twilio -> us ---------------------------------------------------------------------------
    def receive_media(self, audio: bytes) -> Sequence[str]:
        """Caller audio: the append frames now due (hot path: no commands, just frames)."""
        return self.chunker.feed(audio)

    def receive_mark(self, name: str, now: float) -> None:
        """A mark echo (hot path: a mark per ``mark_ms`` of agent audio; no commands)."""
        echo = self.tracker.mark_echoed(name)
        if echo is not None and echo.first:
            self.call.latency.heard(now)
        elif echo is None and self.filler is not None:
            self.filler.mark_echoed(name)

    def phone_ended(self) -> list[str]:
        """The caller's side is over: the remainder of the caller's audio, if any."""
        rest = self.chunker.flush()
        return [rest] if rest is not None else []

    def receive_phone(self, msg: tm.TwilioInbound, now: float) -> list[CallCommand]:
        """A Twilio frame other than media. ProtocolError for one that breaks the protocol."""
        if isinstance(msg, tm.Mark):
            self.receive_mark(msg.mark.name, now)
        elif isinstance(msg, tm.Dtmf):
            return self._dtmf(msg.dtmf.digit, now)
        elif isinstance(msg, tm.Stop):
            self.call.end(EndReason.CALLER_HANGUP, "stop")
            return [StopCall()]
        elif isinstance(msg, tm.Start):
            raise ProtocolError("second start frame")
        return []

    # -- Inworld -> us --------------------------------------------------------------------------
    def receive_audio(self, delta: rt.AudioDelta, now: float) -> tuple[str, ...]:
        """Agent audio: the Twilio frames to send (media, and a mark when one is due)."""
        rid = delta.response_id
        if not self.tracker.accepts_audio(rid):
            self.stale_deltas += 1
            return _NONE
        filler = self.filler
        if filler is not None and filler.state is not filler.IDLE:  # a gap ends: clear first
            return (*filler.agent_audio(), *self._audio_frames(delta, rid, now))
        return self._audio_frames(delta, rid, now)

    def _audio_frames(self, delta: rt.AudioDelta, rid: str, now: float) -> tuple[str, ...]:
        latency = self.call.latency
        latency.upstream_byte(now)
        latency.audio_out(now)
        text, self.pending_text = self.pending_text, ""
        duration = ulaw_ms(delta.n_bytes)
        self._unmarked_ms += duration
        due = self._unmarked_ms >= self.mark_ms or rid != self._marked_response
        name = self.tracker.audio_sent(rid, duration, text, mark=due)
        sid = self.call.stream_sid
        media = tm.dump_media_b64(sid, delta.payload)
        if name is None:
            return (media,)
        self.call.counters.marks_out += 1
        self._unmarked_ms = 0.0
        self._marked_response = rid
        return media, tm.dump_mark(sid, name)

    def receive_transcript(self, delta: rt.TranscriptDelta) -> None:
        if self.tracker.accepts_audio(delta.response_id):
            self.pending_text += delta.delta

    def receive_upstream(self, event: rt.ParsedServerEvent, now: float) -> list[CallCommand]:
        """Any other upstream event; see the module docstring for the rules."""
        commands = self._on_upstream(event, now)
        if self.tools is not None:
            commands = [*commands, *self.tools.on_event(event, now, self.active_response)]
        return commands

    def tool_finished(self, result: ToolResult, now: float) -> list[CallCommand]:
        """A tool call the machine asked for (`RunTool`) produced its result."""
        return self.tools.finished(result, now) if self.tools is not None else []

    def wake(self, now: float) -> list[CallCommand]:
        """A `Wake` the machine asked for is due."""
        if self.tools is None:
            return []
        return self.tools.wake(
            now, generating=self.active_response is not None, playing=self.tracker.playing
        )

    def filler_due(self) -> tuple[list[str], bool]:
        """`filler_after_ms` into a reconnect gap: (frames for Twilio, ask again soon)."""
        filler = self.filler
        if filler is None:
            return [], False
        step = filler.due(agent_playing=self.tracker.playing)
        if step is FillerStep.PLAY:
            self.call.counters.upstream_fillers += 1
            log.info("reconnect_filler_played", ms=round(ulaw_ms(len(filler.clip))))
            return filler.frames(), False
        return [], step is FillerStep.LATER

    def reconnect_failed(self) -> list[str]:
        """No new session: frames for Twilio before the failover (a filler playing is cleared)."""
        return self.filler.give_up() if self.filler is not None else []

    def _on_upstream(self, event: rt.ParsedServerEvent, now: float) -> list[CallCommand]:
        if isinstance(event, rt.SpeechStarted):
            if self.filler is not None:
                clear = [SendPhone(frame) for frame in self.filler.barge_in()]
                return [*clear, *self._barge_in(now)]
            return self._barge_in(now)
        if isinstance(event, rt.SpeechStopped):
            self.call.counters.turns += 1
            self.call.latency.start_turn(now)
            return [ReportTurns()]
        if isinstance(event, rt.TranscriptionCompleted):
            self.call.history.add_user(event.transcript)
            current = self.call.latency.current
            if self.call.record_transcripts and current is not None:
                current.user_text = event.transcript
        elif isinstance(event, rt.ResponseCreated):
            self._begin(event.response.id or "", None)
        elif isinstance(event, rt.ResponseOutputItemAdded):
            item = event.item  # a function call item has no audio to truncate
            self._begin(event.response_id or "", item.id if item.type == "message" else None)
        elif isinstance(event, rt.OutputAudioDone | rt.OutputAudioTranscriptDone):
            return self._close_audio(event.response_id or "")
        elif isinstance(event, rt.ResponseDone):
            return self._finish(event.response.id or "")
        elif isinstance(event, rt.SessionUpdated):
            return self._session_ready()
        elif isinstance(event, rt.ErrorEvent):
            return self._error(event)
        elif isinstance(event, rt.UntypedFrame):
            self._untyped(event)
        return []

    def upstream_closed(self, reason: str) -> None:
        """Inworld closed the session: a drop, or the capacity refusal an untyped frame named."""
        if self.capacity_signal is not None:
            self.failed(UpstreamFailure.CAPACITY, self.capacity_signal)
        else:
            self.failed(UpstreamFailure.DROPPED, reason)

    def failed(self, kind: UpstreamFailure, detail: str) -> None:
        """Record an upstream failure (the first reason wins)."""
        if self.call.end_reason is None:
            self.call.upstream_failure = kind.value
            log.warning("upstream_failed", failure=kind.value, detail=detail[:200])
        self.call.end(EndReason.UPSTREAM_FAILED, detail)

    # -- rules ------------------------------------------------------------------------------------
    def _session_ready(self) -> list[CallCommand]:
        if self.session_ready:
            return []
        self.session_ready = True
        log.info("upstream_session_ready")
        commands: list[CallCommand] = [SendUpstream(frame) for frame in self.greeting]
        return [*commands, Wake(CLOSE_POLL_S)] if self._wake_when_ready else commands

    def _begin(self, response_id: str, item_id: str | None) -> None:
        if not response_id:
            return
        if response_id != self.active_response:
            self.active_response = response_id
            self.pending_text = ""
            current = self.call.latency.current
            if current is not None and current.response_id is None:
                current.response_id = response_id
        self.tracker.begin_response(response_id, item_id)

    def _finish(self, response_id: str) -> list[CallCommand]:
        self.tracker.response_finished(response_id)
        if response_id != self.active_response:
            return []
        self.active_response = None
        if self._reply_after_response:
            self._reply_after_response = False
            return [SendUpstream(rt.dump(rt.ResponseCreate()))]
        return []

    def _dtmf(self, digit: str, now: float) -> list[CallCommand]:
        """A key press reaches the model as a user message worded by the number's template
        (like speech: it barges in and cancels running tools); the reply is asked for at once,
        or when the response still active has ended."""
        call = self.call
        call.counters.dtmf += 1
        log.info("dtmf_received")  # never the digit: PINs and card numbers
        commands = self._barge_in(now)
        if self.tools is not None:
            commands += self.tools.caller_input(now)
        text = self.dtmf_template.replace("{digit}", digit)
        call.history.add_user(text)
        call.counters.turns += 1
        call.latency.start_turn(now, "turn", text if call.record_transcripts else "")
        item = rt.ConversationItemCreate(item=rt.Item.user_text(text))
        commands += [ReportTurns(), SendUpstream(rt.dump(item))]
        if self.active_response is None:
            commands.append(SendUpstream(rt.dump(rt.ResponseCreate())))
        else:
            self._reply_after_response = True
        return commands

    def _close_audio(self, response_id: str) -> list[CallCommand]:
        """The response's audio is complete: a last mark for audio (or text) not yet marked."""
        if not self.tracker.accepts_audio(response_id):
            return []
        if not self.pending_text and not (
            self._unmarked_ms > 0 and self._marked_response == response_id
        ):
            return []
        text, self.pending_text = self.pending_text, ""
        name = self.tracker.audio_sent(response_id, 0.0, text)
        self._unmarked_ms = 0.0
        self._marked_response = response_id
        assert name is not None
        self.call.counters.marks_out += 1
        return [SendPhone(tm.dump_mark(self.call.stream_sid, name))]

    def _barge_in(self, detected: float) -> list[CallCommand]:
        commands = self.tracker.speech_started()
        if not commands:
            return []
        call = self.call
        call.counters.barge_ins += 1
        self.pending_text = ""
        self._unmarked_ms = 0.0
        out = barge_in_frames(commands, call.stream_sid, self.active_response is not None)
        if any(isinstance(command, ClearPlayback) for command in commands):
            call.latency.barge_in(detected, time.monotonic())
        log.info("barge_in", commands=[type(c).__name__ for c in commands])
        return out

    def _error(self, event: rt.ErrorEvent) -> list[CallCommand]:
        if event.code in BENIGN_ERROR_CODES:
            log.debug("upstream_benign_error", code=event.code)
            return []
        self.call.counters.upstream_errors += 1
        if error_is_fatal(event, self.session_ready):
            self.failed(UpstreamFailure.ERROR, f"{event.code}: {event.message}")
            return [StopCall()]
        log.warning("upstream_error", code=event.code, message=event.message[:200])
        return []

    def _untyped(self, frame: rt.UntypedFrame) -> None:
        self.call.counters.upstream_errors += 1
        error_type = (frame.error_type or "")[:80]
        if error_type in CAPACITY_ERROR_TYPES:
            self.capacity_signal = error_type
        log.warning("upstream_untyped_frame", error_type=error_type or None)
