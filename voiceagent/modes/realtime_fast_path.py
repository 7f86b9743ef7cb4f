"""realtime-passthrough's fast paths: audio handled in a socket's read callback.

Most of a call's frames are audio: 50 caller frames a second, and Inworld's deltas while the
agent talks. Each is taken as its frame is parsed, while the side's pump waits with nothing
queued (`Channel.intercept`): no future, no task switch, and the audio goes out in the same
callback, so it never waits behind other calls' work in the event loop's queue.

A hook takes a frame only when the other side can be written without waiting (`writable`).
Anything else (another event, a frame it cannot read, audio for a peer slow to read) is
declined and goes on to the pump, which reads it again and handles it, and its errors, as
before: a malformed frame is counted, a bug ends the call as an internal error. A hook never
raises into the read callback: a failure after it took the frame ends the connection it was
sending to, and is logged with the call's SID (the callback runs outside the call's log
context).
"""

from __future__ import annotations

import time

from voiceagent.logging import clip, get_logger
from voiceagent.modes.lifecycle import CallRun
from voiceagent.protocols import inworld_realtime as rt
from voiceagent.protocols import twilio_media as tm
from voiceagent.session.realtime_call import RealtimeCall
from voiceagent.transport.channel import Channel
from voiceagent.transport.intercept import FrameHook

log = get_logger("voiceagent.realtime")


def take_caller_audio(run: CallRun, machine: RealtimeCall, upstream: Channel) -> FrameHook:
    """Twilio → Inworld: a `media` frame's audio, appended upstream (a fifth of a bare
    bridge's CPU at 100 calls, benchmarks/realtime_load.py)."""
    counters, read_media, receive_media = run.call.counters, tm.read_media, machine.receive_media
    send_nowait = upstream.send_nowait

    def take(raw: str) -> bool:
        if not upstream.writable:
            return False
        try:
            audio = read_media(raw)
        except Exception:  # malformed (or a bug): the pump reads it again and handles it
            return False
        if audio is None:
            return False
        counters.frames_in += 1
        try:
            for frame in receive_media(audio):
                send_nowait(frame)
        except Exception as exc:
            _not_sent(run, upstream, "caller_audio_not_sent", exc)
        return True

    return take


def take_agent_audio(run: CallRun, machine: RealtimeCall) -> FrameHook:
    """Inworld → Twilio: an audio delta, sent to the caller as `media` (and a `mark` when one
    is due); a transcript delta, noted for the audio it goes with."""
    phone, counters = run.phone, run.call.counters
    read, audio_type, transcript_type = rt.read_server_event, rt.AudioDelta, rt.TranscriptDelta
    receive_audio, receive_transcript = machine.receive_audio, machine.receive_transcript
    send_nowait = phone.send_nowait

    def take(raw: str) -> bool:
        if not phone.writable:
            return False
        try:
            event = read(raw)
        except Exception:  # malformed (or a bug): the pump reads it again and handles it
            return False
        kind = event.__class__
        if kind is not audio_type and kind is not transcript_type:
            return False
        try:
            if kind is transcript_type:
                receive_transcript(event)  # type: ignore[arg-type]
                return True
            for frame in receive_audio(event, time.monotonic()):  # type: ignore[arg-type]
                send_nowait(frame)
                counters.frames_out += 1
        except Exception as exc:
            _not_sent(run, phone, "agent_audio_not_sent", exc)
        return True

    return take


def _not_sent(run: CallRun, to: Channel, event: str, exc: Exception) -> None:
    log.warning(event, call_sid=clip(run.call.call_sid, 40), error=clip(exc, 200))
    to.abort(f"audio not sent: {type(exc).__name__}")
