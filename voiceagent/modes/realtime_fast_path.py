"""realtime-passthrough's fast paths: audio handled in a socket's read callback.

Most of a call's frames are audio: 50 caller frames a second, and Inworld's deltas while the
agent talks. Each is taken as its frame is parsed, while the side's pump waits with nothing
queued (`Channel.intercept`): no future, no task switch, and the audio goes out in the same
callback, so it never waits behind other calls' work in the event loop's queue.

A hook takes a frame only when the other side can be written without waiting (`writable`)
and the frame is small enough that what it makes cannot fill the socket's buffer.
Anything else (another event, a frame it cannot read, audio for a peer slow to read) is
declined and goes on to the pump, which reads it again and handles it, and its errors, as
before: a malformed frame is counted, a bug ends the call as an internal error. A hook never
raises into the read callback: a failure after it took the frame ends the connection it was
sending to, and is logged with the call's SID (the callback runs outside the call's log
context).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeAlias, TypeVar

from voiceagent.logging import clip, get_logger
from voiceagent.modes.lifecycle import CallRun
from voiceagent.protocols import inworld_realtime as rt
from voiceagent.protocols import twilio_media as tm
from voiceagent.session.realtime_call import RealtimeCall
from voiceagent.transport.channel import Channel
from voiceagent.transport.intercept import FrameHook

log = get_logger("voiceagent.realtime")
T = TypeVar("T")

FAST_PATH_MAX_CHARS = 32 * 1024
"""Larger frames take the pump: the frames made from one must fit under the socket's 64 KiB
high-water mark, or sending them could have to wait (which `send_nowait` must not)."""
_Delta: TypeAlias = rt.AudioDelta | rt.TranscriptDelta


def take_caller_audio(run: CallRun, machine: RealtimeCall, upstream: Channel) -> FrameHook:
    """Twilio → Inworld: a `media` frame's audio, appended upstream (a fifth of a bare
    bridge's CPU at 100 calls, benchmarks/realtime_load.py); a `mark` echo, noted as heard
    (one per ``mark_ms`` of agent audio: no task switch for it either)."""
    counters, receive_media, receive_mark = (
        run.call.counters,
        machine.receive_media,
        machine.receive_mark,
    )
    monotonic = time.monotonic

    def appends(item: bytes | str) -> Sequence[str]:
        counters.frames_in += 1
        if item.__class__ is bytes:
            return receive_media(item)
        receive_mark(item, monotonic())  # type: ignore[arg-type]
        return ()

    return _FastPath[bytes | str](run, upstream, tm.read_media, appends, "caller_audio_not_sent")


def take_agent_audio(run: CallRun, machine: RealtimeCall) -> FrameHook:
    """Inworld → Twilio: an audio delta, sent to the caller as `media` (and a `mark` when one
    is due); a transcript delta, noted for the audio it goes with."""
    read, audio_type, transcript_type = rt.read_server_event, rt.AudioDelta, rt.TranscriptDelta
    receive_audio, receive_transcript = machine.receive_audio, machine.receive_transcript

    def read_audio(raw: str) -> _Delta | None:
        event = read(raw)
        kind = event.__class__
        return event if kind is audio_type or kind is transcript_type else None  # type: ignore[return-value]

    def to_caller(event: _Delta) -> Sequence[str]:
        if event.__class__ is transcript_type:
            receive_transcript(event)
            return ()
        return receive_audio(event, time.monotonic())  # type: ignore[arg-type]

    return _FastPath[_Delta](run, run.phone, read_audio, to_caller, "agent_audio_not_sent")


class _FastPath(Generic[T]):
    """The hook both fast paths share: while `to` is writable, `read` the frame (None, or any
    exception: declined to the pump) and send the `frames` it makes to `to` (counted in
    `frames_out` when `to` is the phone). A failure from then on aborts `to`."""

    __slots__ = ("failure", "frames", "read", "run", "to", "to_phone")

    def __init__(
        self, run: CallRun, to: Channel, read: Callable[[str], T | None],
        frames: Callable[[T], Sequence[str]], failure: str,
    ) -> None:  # fmt: skip
        self.run, self.to, self.read, self.frames, self.failure = run, to, read, frames, failure
        self.to_phone = to is run.phone

    def __call__(self, raw: str) -> bool:
        to = self.to
        if not to.writable or len(raw) > FAST_PATH_MAX_CHARS:
            return False
        try:
            item = self.read(raw)
        except Exception:  # malformed (or a bug): the pump reads it again and handles it
            return False
        if item is None:
            return False
        try:
            for frame in self.frames(item):
                to.send_nowait(frame)
                if self.to_phone:
                    self.run.call.counters.frames_out += 1
        except Exception as exc:
            call_sid = clip(self.run.call.call_sid, 40)
            log.warning(self.failure, call_sid=call_sid, error=clip(exc, 200))
            to.abort(f"audio not sent: {type(exc).__name__}")
        return True
