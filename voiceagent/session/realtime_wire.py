"""Wire rules of the realtime call, pure: caller audio batched into appends of exactly
``append_ms``, the frames of a barge-in, and which Inworld ``error`` events are benign, fatal
or a capacity signal."""

from __future__ import annotations

from collections.abc import Sequence

from voiceagent.audio import ulaw_bytes
from voiceagent.protocols import inworld_realtime as rt
from voiceagent.protocols import twilio_media as tm
from voiceagent.session.commands import (
    CallCommand,
    CancelResponse,
    ClearPlayback,
    Command,
    SendPhone,
    SendUpstream,
    TruncateItem,
)

BENIGN_ERROR_CODES = frozenset(
    {"response_cancel_not_active", "conversation_already_has_active_response"}
)
"""Error codes that race with barge-in and mean nothing went wrong."""
CAPACITY_ERROR_TYPES = frozenset({"SESSION_RESOURCES_EXHAUSTED"})
"""Untyped ``errorType`` values meaning the account's concurrent-session cap was hit."""


class AppendChunker:
    """Batches caller audio into ``input_audio_buffer.append`` frames of exactly ``append_ms``
    (a remainder waits). Hot path: 50 calls a second per call, so the common case (the buffer
    reaches one append exactly) is one encode, with no intermediate chunk list."""

    __slots__ = ("_buffer", "size")

    def __init__(self, append_ms: int) -> None:
        self.size = ulaw_bytes(append_ms)
        self._buffer = bytearray()

    def feed(self, audio: bytes) -> Sequence[str]:
        """Add caller audio; return the append frames now complete (usually none or one)."""
        buffer = self._buffer
        buffer += audio
        size = self.size
        if len(buffer) < size:
            return ()
        if len(buffer) == size:
            frame = rt.dump_append(buffer)
            buffer.clear()
            return (frame,)
        frames = []
        while len(buffer) >= size:
            frames.append(rt.dump_append(buffer[:size]))
            del buffer[:size]
        return frames

    def flush(self) -> str | None:
        """The append frame of the remainder (shorter than one append), if any; emptied."""
        if not self._buffer:
            return None
        frame = rt.dump_append(self._buffer)
        self._buffer.clear()
        return frame


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


def barge_in_frames(
    commands: Sequence[Command], stream_sid: str, response_active: bool
) -> list[CallCommand]:
    """The frames of the tracker's barge-in commands, in their (urgent-first) order: Twilio
    ``clear``, ``response.cancel`` only while a response is active, the truncate at what was
    heard."""
    out: list[CallCommand] = []
    for command in commands:
        if isinstance(command, ClearPlayback):
            out.append(SendPhone(tm.dump_clear(stream_sid)))
        elif isinstance(command, CancelResponse) and response_active:
            cancel = rt.ResponseCancel(response_id=command.response_id or None)
            out.append(SendUpstream(rt.dump(cancel)))
        elif isinstance(command, TruncateItem):
            truncate = rt.ConversationItemTruncate(
                item_id=command.item_id,
                content_index=command.content_index,
                audio_end_ms=command.audio_end_ms,
            )
            out.append(SendUpstream(rt.dump(truncate)))
    return out
