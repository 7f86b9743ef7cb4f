"""One realtime-passthrough call in flight: Twilio Media Streams ↔ one Inworld Realtime session.

Two directions run in one TaskGroup. Caller audio goes upstream in appends of the plan's
size; agent audio goes to Twilio as it arrives, each chunk followed by a mark so the
PlaybackTracker knows what the caller heard. Barge-in executes the tracker's commands,
urgent control first: Twilio ``clear``, then ``response.cancel`` (only while a response is
active), then ``conversation.item.truncate`` at the heard milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from voiceagent.audio import ulaw_ms
from voiceagent.config import CallPlan
from voiceagent.errors import ProtocolError, UpstreamError, UpstreamFailure
from voiceagent.logging import get_logger
from voiceagent.modes import realtime_frames as rf
from voiceagent.protocols import inworld_realtime as rt
from voiceagent.protocols import twilio_media as tm
from voiceagent.protocols._wire import loads_object
from voiceagent.runtime import Services
from voiceagent.session.call import CallSession, EndReason
from voiceagent.session.commands import CancelResponse, ClearPlayback, TruncateItem
from voiceagent.session.playback import PlaybackTracker
from voiceagent.transport.channel import Channel, ChannelClosed
from voiceagent.transport.inworld_realtime import connect_realtime, session_key

log = get_logger("voiceagent.realtime")

MAX_BAD_FRAMES = 200
"""Malformed phone frames tolerated per call before the call is closed as a protocol error."""
LOGGED_BAD_FRAMES = 3
"""Malformed frames logged individually per call (the rest are only counted)."""
CLOSE_TIMEOUT_S = 1.0


class Finished(Exception):
    """One direction of the bridge ended; the TaskGroup cancels the other."""


class Bridge:
    """Per-call state and the two directions of one realtime-passthrough call."""

    def __init__(self, phone: Channel, call: CallSession, plan: CallPlan, services: Services):
        self.phone = phone
        self.call = call
        self.plan = plan
        self.services = services
        self.upstream: Channel | None = None
        self.tracker = PlaybackTracker(call.history)
        self.chunker = rf.AppendChunker(plan.realtime.append_ms)
        self.session_ready = False
        self.active_response: str | None = None
        self.pending_text = ""
        self.stale_deltas = 0
        self._reported_turns = 0
        self._turn_response: dict[int, str] = {}  # latency turn index -> its response id

    # -- lifecycle ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Connect upstream, configure it, then bridge until either side ends."""
        started = time.monotonic()
        key = session_key(self.call.call_sid)
        self.upstream = upstream = await connect_realtime(
            self.services.http, self.services.settings, key
        )
        log.info("upstream_connected", key=key, ms=round((time.monotonic() - started) * 1e3, 1))
        with contextlib.suppress(ChannelClosed):  # closed at once (e.g. over capacity):
            await upstream.send(rf.session_update(self.plan))  # its last frames still tell why
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._phone_to_upstream(upstream))
                tg.create_task(self._upstream_to_phone(upstream))
        except* Finished:
            pass

    def upstream_failed(self, kind: UpstreamFailure, detail: str) -> None:
        """Record an upstream failure: logged with its reason, counted, call ends."""
        if self.call.end_reason is None:
            self.call.upstream_failure = kind.value
            log.warning("upstream_failed", failure=kind.value, detail=detail)
        self.call.end(EndReason.UPSTREAM_FAILED, detail)

    def refused(self, exc: UpstreamError) -> None:
        self.upstream_failed(exc.kind, str(exc))

    async def close_upstream(self) -> None:
        """Close Inworld (within a second) and report the turns still open."""
        self.report_turns(final=True)
        if self.upstream is not None and not self.upstream.closed:
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await self.upstream.close()
            except (TimeoutError, OSError, ChannelClosed):
                log.warning("upstream_close_slow")

    async def close_phone(self) -> None:
        """Close the phone socket: Twilio then requests the ``<Connect action>`` callback."""
        if not self.phone.closed:
            reason = (self.call.end_reason or EndReason.INTERNAL_ERROR).value
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_S * 2):
                    await self.phone.close(1000, reason)
            except (TimeoutError, OSError, ChannelClosed):
                log.warning("phone_close_slow")

    def report_turns(self, final: bool = False) -> None:
        """Hand finished turns to the sink (the current one too when the call ends)."""
        turns = self.call.latency.turns
        end = len(turns) if final else len(turns) - 1
        for turn in turns[self._reported_turns : max(end, self._reported_turns)]:
            if self.plan.record_transcripts:
                turn.agent_text = self._heard_text(self._turn_response.get(turn.index))
            self.services.sink.turn_finished(self.call, turn)
            log.info("turn_finished", index=turn.index, kind=turn.kind, **turn.figures())
        self._reported_turns = max(end, self._reported_turns)

    # -- caller -> Inworld ----------------------------------------------------------------------
    async def _phone_to_upstream(self, upstream: Channel) -> None:
        phone, call, counters = self.phone, self.call, self.call.counters
        try:
            while True:
                raw = await phone.receive()
                if raw is None:
                    call.end(EndReason.CALLER_DISCONNECTED, phone.close_reason)
                    break
                try:
                    if not isinstance(raw, str):
                        raise ProtocolError("binary frame")
                    obj = loads_object(raw, "twilio media streams")
                    if obj.get("event") == "media":
                        counters.frames_in += 1
                        for chunk in self.chunker.feed(rf.media_audio(obj)):
                            await upstream.send(rt.dump_append(chunk))
                    elif not self._on_phone_event(tm.parse_inbound(raw)):
                        break
                except ProtocolError as exc:
                    self._bad_frame(exc)
            rest = self.chunker.flush()
            if rest and not upstream.closed:
                await upstream.send(rt.dump_append(rest))
        except ChannelClosed:
            self._channel_lost()
        raise Finished

    def _on_phone_event(self, msg: tm.TwilioInbound) -> bool:
        """Handle a non-media Twilio frame; False when the stream is over."""
        if isinstance(msg, tm.Mark):
            echo = self.tracker.mark_echoed(msg.mark.name)
            if echo is not None and echo.first:
                self.call.latency.heard(time.monotonic())
        elif isinstance(msg, tm.Dtmf):
            self.call.counters.dtmf += 1
            log.info("dtmf", digit=msg.dtmf.digit)
        elif isinstance(msg, tm.Stop):
            self.call.end(EndReason.CALLER_HANGUP, "stop")
            return False
        elif isinstance(msg, tm.Start):
            self._bad_frame(ProtocolError("second start frame"))
        return True

    def _bad_frame(self, exc: ProtocolError) -> None:
        counters = self.call.counters
        counters.bad_frames += 1
        if counters.bad_frames <= LOGGED_BAD_FRAMES:
            log.warning("phone_bad_frame", error=str(exc)[:200], count=counters.bad_frames)
        if counters.bad_frames > MAX_BAD_FRAMES:
            self.call.end(EndReason.PROTOCOL_ERROR, "too many malformed frames")
            raise Finished

    def _channel_lost(self) -> None:
        if self.upstream is not None and self.upstream.closed:
            self.upstream_failed(UpstreamFailure.DROPPED, "upstream closed while sending")
        else:
            self.call.end(EndReason.CALLER_DISCONNECTED, "phone closed while sending")

    # -- Inworld -> caller ----------------------------------------------------------------------
    async def _upstream_to_phone(self, upstream: Channel) -> None:
        try:
            while True:
                raw = await upstream.receive()
                if raw is None:
                    self.upstream_failed(UpstreamFailure.DROPPED, upstream.close_reason)
                    break
                if not isinstance(raw, str):
                    continue
                try:
                    obj = loads_object(raw, "inworld realtime")
                    kind = obj.get("type")
                    if kind in rf.AUDIO_DELTA_TYPES:
                        await self._on_audio_delta(rf.audio_delta(obj))
                    elif kind in rf.TRANSCRIPT_DELTA_TYPES:
                        self._on_transcript_delta(obj)
                    elif not await self._on_event(rt.parse_server_event(raw)):
                        break
                except ProtocolError as exc:
                    self.call.counters.upstream_errors += 1
                    log.warning("upstream_bad_frame", error=str(exc)[:200])
        except ChannelClosed:
            self._channel_lost()
        raise Finished

    def _on_transcript_delta(self, obj: dict[str, object]) -> None:
        delta = obj.get("delta")
        if isinstance(delta, str) and self.tracker.accepts_audio(str(obj.get("response_id") or "")):
            self.pending_text += delta

    async def _on_audio_delta(self, delta: rf.AudioDelta) -> None:
        if not self.tracker.accepts_audio(delta.response_id):
            self.stale_deltas += 1
            return
        latency, sid = self.call.latency, self.call.stream_sid
        latency.upstream_byte(time.monotonic())
        text, self.pending_text = self.pending_text, ""
        mark = self.tracker.audio_sent(delta.response_id, ulaw_ms(delta.n_bytes), text)
        await self.phone.send(rf.media_frame(sid, delta.payload))
        latency.audio_out(time.monotonic())
        await self.phone.send(tm.dump_mark(sid, mark))
        counters = self.call.counters
        counters.frames_out += 1
        counters.marks_out += 1

    async def _on_event(self, event: rt.ParsedServerEvent) -> bool:
        """Handle a non-audio upstream event; False when the call must end."""
        if isinstance(event, rt.SpeechStarted):
            await self._barge_in(time.monotonic())
        elif isinstance(event, rt.SpeechStopped):
            self.call.counters.turns += 1
            self.call.latency.start_turn(time.monotonic())
            self.report_turns()
        elif isinstance(event, rt.TranscriptionCompleted):
            self.call.history.add_user(event.transcript)
            if self.plan.record_transcripts and self.call.latency.current is not None:
                self.call.latency.current.user_text = event.transcript
        elif isinstance(event, rt.ResponseCreated):
            self._begin(event.response.id or "", None)
        elif isinstance(event, rt.ResponseOutputItemAdded):
            self._begin(event.response_id or "", event.item.id)
        elif isinstance(event, rt.OutputAudioDone | rt.OutputAudioTranscriptDone):
            await self._flush_text(event.response_id or "")
        elif isinstance(event, rt.ResponseDone):
            self._finish(event.response.id or "")
        elif isinstance(event, rt.SessionUpdated):
            await self._session_ready()
        else:
            return self._on_failure_event(event)
        return True

    def _on_failure_event(self, event: rt.ParsedServerEvent) -> bool:
        if isinstance(event, rt.ErrorEvent):
            if event.code in rf.BENIGN_ERROR_CODES:
                log.debug("upstream_benign_error", code=event.code)
                return True
            self.call.counters.upstream_errors += 1
            if rf.error_is_fatal(event, self.session_ready):
                self.upstream_failed(UpstreamFailure.ERROR, f"{event.code}: {event.message}")
                return False
            log.warning("upstream_error", code=event.code, message=event.message[:200])
        elif isinstance(event, rt.UntypedFrame):
            if event.error_type in rf.CAPACITY_ERROR_TYPES:
                self.upstream_failed(UpstreamFailure.CAPACITY, event.error_type or "")
                return False
            log.warning("upstream_untyped_frame", error_type=event.error_type)
        return True

    async def _session_ready(self) -> None:
        if self.session_ready:
            return
        self.session_ready = True
        log.info("upstream_session_ready")
        if self.plan.realtime.greet_first and self.upstream is not None:
            for frame in rf.greeting_frames(self.plan):
                await self.upstream.send(frame)

    def _heard_text(self, response_id: str | None) -> str:
        """What the caller heard of ``response_id`` (the history keeps it cut to that)."""
        turns = self.call.history.turns
        return next((t.text for t in reversed(turns) if t.response_id == response_id), "")

    def _begin(self, response_id: str, item_id: str | None) -> None:
        if response_id and response_id != self.active_response:
            self.active_response = response_id
            self.pending_text = ""
            current = self.call.latency.current
            if current is not None:
                self._turn_response.setdefault(current.index, response_id)
        if response_id:
            self.tracker.begin_response(response_id, item_id)

    def _finish(self, response_id: str) -> None:
        self.tracker.response_finished(response_id)
        if response_id == self.active_response:
            self.active_response = None

    async def _flush_text(self, response_id: str) -> None:
        """Transcript that arrived after the last audio chunk: attach it with a bare mark."""
        if self.pending_text and self.tracker.accepts_audio(response_id):
            text, self.pending_text = self.pending_text, ""
            mark = self.tracker.audio_sent(response_id, 0.0, text)
            await self.phone.send(tm.dump_mark(self.call.stream_sid, mark))
            self.call.counters.marks_out += 1

    async def _barge_in(self, detected: float) -> None:
        commands = self.tracker.speech_started()
        if not commands:
            return
        self.call.counters.barge_ins += 1
        self.pending_text = ""
        upstream = self.upstream
        assert upstream is not None
        for command in commands:
            if isinstance(command, ClearPlayback):
                await self.phone.send(tm.dump_clear(self.call.stream_sid))
                self.call.latency.barge_in(detected, time.monotonic())
            elif isinstance(command, CancelResponse):
                if self.active_response is not None:
                    await upstream.send(rf.cancel_frame(command.response_id))
            elif isinstance(command, TruncateItem):
                await upstream.send(
                    rf.truncate_frame(command.item_id, command.audio_end_ms, command.content_index)
                )
        log.info("barge_in", commands=[type(c).__name__ for c in commands])
