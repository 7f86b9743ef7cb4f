"""What a simulated ConversationRelay call does (script steps) and what it saw (the record)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from voiceagent.sim.relay_playback import ClipRecord, TurnRecord


@dataclass(frozen=True, slots=True)
class Say:
    """The caller says `text` (a final `prompt`) and, unless an Interrupt follows or `listen`
    is False (the next step comes at once, e.g. a prompt that supersedes the reply), listens."""

    text: str
    listen: bool = True


@dataclass(frozen=True, slots=True)
class Interrupt:
    """Barge in once `after_ms` of the current reply played, then say `text`."""

    after_ms: float
    text: str


@dataclass(frozen=True, slots=True)
class PressKey:
    """The caller presses `digit` (a `dtmf` message) and listens to the reply."""

    digit: str


@dataclass(frozen=True, slots=True)
class SendRaw:
    """Send `data` as is (to test how the server takes bad messages)."""

    data: str


@dataclass(frozen=True, slots=True)
class Pause:
    """The caller stays silent for `seconds` (real time), whatever the agent does."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Drop:
    """The socket to the server breaks on Twilio's side: the session is reported `failed`,
    and Twilio follows the action's TwiML (a reconnect continues the script)."""


@dataclass(frozen=True, slots=True)
class Hangup:
    """The caller hangs up (the script's end implies it)."""


ScriptStep = Say | Interrupt | PressKey | SendRaw | Pause | Drop | Hangup


@dataclass(slots=True)
class RelayCallRecord:
    """Everything the simulated Twilio saw of one call."""

    call_sid: str
    twiml: str = ""
    relay_attributes: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    turns: list[TurnRecord] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    errors_sent: list[str] = field(default_factory=list)
    handoff_data: str | None = None
    session_status: str = ""
    action_twiml: str = ""
    action_url: str = ""
    sessions: int = 0
    close_code: int | None = None

    @property
    def clips(self) -> list[ClipRecord]:
        return [c for t in self.turns for c in t.clips]
