"""realtime-passthrough's fast paths: frames handled in a socket's read callback.

Most of a call's frames are audio: 50 caller frames a second, Inworld's deltas while the agent
talks, and a mark echo per `mark_ms` of agent audio. Each is taken as its frame is parsed,
while the side's pump waits with nothing queued (`Channel.intercept`): no future, no task
switch, and what it makes goes out in the same callback, so it never waits behind other
calls' work in the event loop's queue. Inworld's other events are decided there too
(`UpstreamFastPath`); the pump only carries out what cannot be done without waiting.

A hook takes a frame only when the other side can be written without waiting (`writable`)
and the frame is small enough that what it makes cannot fill the socket's buffer.
Anything else (a frame it cannot read, a peer slow to read, a Twilio event other than media
and marks) is declined and goes on to the pump, which reads it again and handles it, and its
errors, as before: a malformed frame is counted, a bug ends the call as an internal error. A
hook never raises into the read callback: a failure after it took the frame ends the
connection it was sending to, and is logged with the call's SID (the callback may run outside
the call's log context).
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from typing import TypeVar

from voiceagent.logging import clip, get_logger
from voiceagent.modes.lifecycle import CallRun
from voiceagent.protocols import inworld_realtime as rt
from voiceagent.protocols import twilio_media as tm
from voiceagent.session.commands import CallCommand, ReportTurns, SendPhone, SendUpstream
from voiceagent.session.realtime_call import RealtimeCall
from voiceagent.transport.channel import Channel, ChannelClosed

log = get_logger("voiceagent.realtime")
T = TypeVar("T")

FAST_PATH_MAX_CHARS = 32 * 1024
"""Larger frames take the pump: the frames made from one must fit under the socket's 64 KiB
high-water mark, or sending them could have to wait (which `send_nowait` must not)."""


class CallerFastPath:
    """Twilio → Inworld, in the phone socket's read callback, while Inworld's socket is
    writable: a `media` frame's audio, appended upstream (a fifth of a bare bridge's CPU at
    100 calls, benchmarks/realtime_load.py); a `mark` echo, noted as heard (one per
    ``mark_ms`` of agent audio: no task switch for it either)."""

    __slots__ = ("counters", "receive_mark", "receive_media", "run", "upstream")

    def __init__(self, run: CallRun, machine: RealtimeCall, upstream: Channel) -> None:
        self.run, self.upstream, self.counters = run, upstream, run.call.counters
        self.receive_media, self.receive_mark = machine.receive_media, machine.receive_mark

    def __call__(self, raw: str) -> bool:
        upstream = self.upstream
        item = _read(upstream, raw, tm.read_media)
        if item is None:
            return False
        self.counters.frames_in += 1
        if not isinstance(item, bytes):
            self.receive_mark(item, time.monotonic())
            return True
        try:
            for frame in self.receive_media(item):
                upstream.send_nowait(frame)
        except Exception as exc:
            _not_sent(self.run, upstream, "caller_audio_not_sent", exc)
        return True


class UpstreamFastPath:
    """Inworld → machine, in the Inworld socket's read callback, while Twilio's socket is
    writable: every event, not only audio.

    An audio delta goes out to the caller as `media` (and a `mark` when one is due); a
    transcript delta is noted for the audio it goes with; any other event is decided by the
    machine there and then, in the call's log context. Its commands run at once when they
    can: frames for a writable side (Inworld's, for `SendUpstream`) and `ReportTurns`. Any
    other command (a tool run, the end of the call, a frame for a side that would wait, ...)
    is for the pump: the hook declines the frame and keeps what the machine decided, and the
    pump, reading that very frame next, executes the commands instead of deciding again
    (`take_carried`). A machine error is carried the same way and raised there.
    """

    __slots__ = ("_carried", "_context", "machine", "run", "upstream")

    def __init__(self, run: CallRun, machine: RealtimeCall, upstream: Channel) -> None:
        self.run, self.machine, self.upstream = run, machine, upstream
        self._carried: tuple[str, list[CallCommand] | Exception] | None = None
        self._context = contextvars.copy_context()  # the call's log context

    def __call__(self, raw: str) -> bool:
        phone = self.run.phone
        event = _read(phone, raw, rt.read_server_event)
        if event is None:
            return False
        kind = event.__class__
        if kind is rt.TranscriptDelta:
            self.machine.receive_transcript(event)  # type: ignore[arg-type]
            return True
        if kind is not rt.AudioDelta:
            return self._context.run(self._decide, raw, event)  # type: ignore[arg-type]
        try:
            frames = self.machine.receive_audio(event, time.monotonic())  # type: ignore[arg-type]
            for frame in frames:
                phone.send_nowait(frame)
                self.run.call.counters.frames_out += 1
        except Exception as exc:
            _not_sent(self.run, phone, "agent_audio_not_sent", exc)
        return True

    def take_carried(self) -> tuple[str, list[CallCommand]] | None:
        """For the pump, before it handles the frame it read: the frame the hook declined after
        deciding it and the machine's commands for it, to execute instead of deciding again
        (None: read and decide the frame as usual). A carried machine error is raised."""
        carried, self._carried = self._carried, None
        if carried is None:
            return None
        raw, decided = carried
        if isinstance(decided, Exception):
            raise decided
        return raw, decided

    def _decide(self, raw: str, event: rt.ParsedServerEvent) -> bool:
        try:
            commands = self.machine.receive_upstream(event, time.monotonic())
        except Exception as exc:  # raised by the pump, as if it had decided
            self._carried = (raw, exc)
            return False
        upstream_ok = None
        for command in commands:
            kind = command.__class__
            if kind is SendUpstream:
                if upstream_ok is None:
                    upstream_ok = self.upstream.writable
                if not upstream_ok or len(command.frame) > FAST_PATH_MAX_CHARS:  # type: ignore[union-attr]
                    break
            elif kind is SendPhone:
                if len(command.frame) > FAST_PATH_MAX_CHARS:  # type: ignore[union-attr]
                    break
            elif kind is not ReportTurns:
                break
        else:
            try:
                self._execute(commands)
            except Exception as exc:  # a bug: raised by the pump, which ends the call with it
                self._carried = (raw, exc)
                return False
            return True
        self._carried = (raw, commands)
        return False

    def _execute(self, commands: list[CallCommand]) -> None:
        run = self.run
        to: Channel = run.phone
        try:
            for command in commands:
                if isinstance(command, SendPhone):
                    to = run.phone
                    to.send_nowait(command.frame)
                    run.call.counters.frames_out += 1
                elif isinstance(command, SendUpstream):
                    to = self.upstream
                    to.send_nowait(command.frame)
                else:
                    run.report_turns()
        except ChannelClosed as exc:
            _not_sent(run, to, "upstream_event_not_sent", exc)


def _read(to: Channel, raw: str, read: Callable[[str], T]) -> T | None:
    """`raw` read for a hook that would write to `to`, or None: the hook declines the frame to
    the pump (`to` would have to wait, the frame is too large, or `read` did not take it)."""
    if not to.writable or len(raw) > FAST_PATH_MAX_CHARS:
        return None
    try:
        return read(raw)
    except Exception:  # malformed (or a bug): the pump reads it again and handles it
        return None


def _not_sent(run: CallRun, to: Channel, failure: str, exc: Exception) -> None:
    """A frame the hook took could not be sent: `to` is ended (its pump then ends the call),
    logged with the call's SID (the read callback may run outside the call's log context)."""
    log.warning(failure, call_sid=clip(run.call.call_sid, 40), error=clip(exc, 200))
    to.abort(f"not sent: {type(exc).__name__}")
