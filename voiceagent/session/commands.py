"""Commands the session state machines return; the mode executes them (urgent control first)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClearPlayback:
    """Drop every buffered agent audio on the phone side (Twilio `clear`)."""


@dataclass(frozen=True, slots=True)
class CancelResponse:
    """Stop the upstream response that is still generating (Inworld `response.cancel`)."""

    response_id: str


@dataclass(frozen=True, slots=True)
class TruncateItem:
    """Cut the upstream assistant item at what the caller heard (`conversation.item.truncate`)."""

    item_id: str
    audio_end_ms: int
    content_index: int = 0


@dataclass(frozen=True, slots=True)
class AbortStream:
    """Abort the in-flight upstream request of this response (Router SSE)."""

    response_id: str


Command = ClearPlayback | CancelResponse | TruncateItem | AbortStream


# -- what a whole-call state machine asks its mode to do -----------------------------------------


@dataclass(frozen=True, slots=True)
class SendPhone:
    """Send this frame to the phone side (Twilio), in order."""

    frame: str


@dataclass(frozen=True, slots=True)
class SendUpstream:
    """Send this frame to the upstream session (Inworld Realtime), in order."""

    frame: str


@dataclass(frozen=True, slots=True)
class ReportTurns:
    """Turns before the current one are finished: hand them to the sink."""


@dataclass(frozen=True, slots=True)
class StartReply:
    """Generate the agent's reply `response_id` from `messages` (one Router request)."""

    response_id: str
    messages: tuple[dict[str, str], ...]
    greeting: bool = False


@dataclass(frozen=True, slots=True)
class StopCall:
    """The call is over from our side (the reason is already recorded on the CallSession)."""


CallCommand = SendPhone | SendUpstream | ReportTurns | StartReply | AbortStream | StopCall
