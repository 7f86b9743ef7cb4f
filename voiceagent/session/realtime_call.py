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
- errors: benign races are ignored, session-level errors end the call, untyped frames (e.g.
  ``{"errorType": "SESSION_RESOURCES_EXHAUSTED"}``) are logged and counted but never fatal on
  their own: they only classify a close that follows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from voiceagent.audio import ulaw_bytes, ulaw_ms
from voiceagent.errors import ProtocolError, UpstreamFailure
from voiceagent.logging import get_logger
from voiceagent.protocols import inworld_realtime as rt
from voiceagent.protocols import twilio_media as tm
from voiceagent.session.call import CallSession, EndReason
from voiceagent.session.commands import (
    CallCommand,
    CancelResponse,
    ClearPlayback,
    ReportTurns,
    SendPhone,
    SendUpstream,
    StopCall,
    TruncateItem,
)
from voiceagent.session.playback import PlaybackTracker

log = get_logger("voiceagent.realtime")

BENIGN_ERROR_CODES = frozenset(
    {"response_cancel_not_active", "conversation_already_has_active_response"}
)
"""Error codes that race with barge-in and mean nothing went wrong."""
CAPACITY_ERROR_TYPES = frozenset({"SESSION_RESOURCES_EXHAUSTED"})
"""Untyped ``errorType`` values meaning the account's concurrent-session cap was hit."""
_NONE: tuple[str, ...] = ()


class AppendChunker:
    """Batches caller audio into appends of exactly ``append_ms`` (a remainder waits)."""

    __slots__ = ("_buffer", "size")

    def __init__(self, append_ms: int) -> None:
        self.size = ulaw_bytes(append_ms)
        self._buffer = bytearray()

    def feed(self, audio: bytes) -> list[bytes]:
        """Add caller audio; return the appends now complete (usually none or one)."""
        buffer = self._buffer
        buffer += audio
        chunks = []
        while len(buffer) >= self.size:
            chunks.append(bytes(buffer[: self.size]))
            del buffer[: self.size]
        return chunks

    def flush(self) -> bytes:
        """The remainder (shorter than one append), emptied."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest


def error_is_fatal(event: rt.ErrorEvent, session_ready: bool) -> bool:
    """Whether an ``error`` event ends the call.

    Benign races never do. Before ``session.updated`` any error means the session is not
    configured as the call needs; afterwards only errors about the session itself do (e.g.
    ``invalid_value`` on ``session.*``). Errors about one request (a truncate, a response) not.
    """
    if event.code in BENIGN_ERROR_CODES:
        return False
    if not session_ready:
        return True
    detail = event.error
    kind = detail.type if detail is not None else None
    param = (detail.param if detail is not None else None) or ""
    return kind in ("authentication_error", "session_error") or param.startswith("session")


class RealtimeCall:
    """One realtime-passthrough call's decisions (see the module docstring)."""

    def __init__(
        self,
        call: CallSession,
        *,
        append_ms: int,
        mark_ms: float,
        greeting: Sequence[str] = (),
    ) -> None:
        self.call = call
        self.tracker = PlaybackTracker(call.history)
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
        if self.greeting:
            call.latency.start_turn(call.started, "greeting")

    # -- Twilio -> us ---------------------------------------------------------------------------
    def receive_media(self, audio: bytes) -> list[str]:
        """Caller audio: the append frames now due (hot path: no commands, just frames)."""
        chunks = self.chunker.feed(audio)
        return [rt.dump_append(c) for c in chunks] if chunks else []

    def phone_ended(self) -> list[str]:
        """The caller's side is over: the remainder of the caller's audio, if any."""
        rest = self.chunker.flush()
        return [rt.dump_append(rest)] if rest else []

    def receive_phone(self, msg: tm.TwilioInbound, now: float) -> list[CallCommand]:
        """A Twilio frame other than media. ProtocolError for one that breaks the protocol."""
        if isinstance(msg, tm.Mark):
            echo = self.tracker.mark_echoed(msg.mark.name)
            if echo is not None and echo.first:
                self.call.latency.heard(now)
        elif isinstance(msg, tm.Dtmf):
            self.call.counters.dtmf += 1
            log.info("dtmf_received")  # never the digit: PINs and card numbers
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
        if isinstance(event, rt.SpeechStarted):
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
            self._begin(event.response_id or "", event.item.id)
        elif isinstance(event, rt.OutputAudioDone | rt.OutputAudioTranscriptDone):
            return self._close_audio(event.response_id or "")
        elif isinstance(event, rt.ResponseDone):
            self._finish(event.response.id or "")
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
        return [SendUpstream(frame) for frame in self.greeting]

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

    def _finish(self, response_id: str) -> None:
        self.tracker.response_finished(response_id)
        if response_id == self.active_response:
            self.active_response = None

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
        out: list[CallCommand] = []
        for command in commands:
            if isinstance(command, ClearPlayback):
                out.append(SendPhone(tm.dump_clear(call.stream_sid)))
                call.latency.barge_in(detected, time.monotonic())
            elif isinstance(command, CancelResponse) and self.active_response is not None:
                cancel = rt.ResponseCancel(response_id=command.response_id or None)
                out.append(SendUpstream(rt.dump(cancel)))
            elif isinstance(command, TruncateItem):
                truncate = rt.ConversationItemTruncate(
                    item_id=command.item_id,
                    content_index=command.content_index,
                    audio_end_ms=command.audio_end_ms,
                )
                out.append(SendUpstream(rt.dump(truncate)))
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
