"""Commands the session state machines return; the mode executes them (urgent control first)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from voiceagent.tools.calls import ToolCall, ToolResult


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
    """Generate the agent's reply `response_id` from `messages` (one Router request).

    `tool_choice` None declares no tools (the greeting, a number without tools); "none"
    declares them but lets the model call none (a turn that already used its tool rounds)."""

    response_id: str
    messages: tuple[dict[str, Any], ...]
    greeting: bool = False
    tool_choice: Literal["auto", "none"] | None = None


@dataclass(frozen=True, slots=True)
class RunTool:
    """Run this tool call off the pump loops (a task of the call's TaskGroup) and report
    its result back to the machine."""

    call: ToolCall


@dataclass(frozen=True, slots=True)
class CancelTool:
    """Cancel the call `result.call` if it runs (the caller barged in), and log and count
    `result`, its result already recorded and answered to the model (`cancelled`, or
    `refused` for a call the machine did not run)."""

    result: ToolResult


@dataclass(frozen=True, slots=True)
class Wake:
    """Call the machine's `wake(now)` in `after_s` seconds (a follow-up or the call's end
    waits for something that sends no event)."""

    after_s: float


@dataclass(frozen=True, slots=True)
class StopCall:
    """The call is over from our side (the reason is already recorded on the CallSession)."""


CallCommand = (
    SendPhone
    | SendUpstream
    | ReportTurns
    | StartReply
    | AbortStream
    | StopCall
    | RunTool
    | CancelTool
    | Wake
)
