"""What a simulated caller does and what it observed: one vocabulary for both callers. No I/O.

The same steps drive a Media Streams call (``media_caller.py``) and a ConversationRelay call
(``relay_caller.py``), so one script can rehearse a number whichever mode answers it:

=========  =========================================  ==========================================
step       Media Streams (audio in real time)         ConversationRelay (messages)
=========  =========================================  ==========================================
Say        ``ms`` of speech-like µ-law (barge-in by   a final ``prompt`` with ``text``; during
           voice activity if the agent is playing)    playback first an ``interrupt`` (as the
                                                      TwiML's ``interruptible`` allows)
Listen     silence until the agent is ``quiet`` or    until the reply played and the server is
           ``playing`` (``min_heard_ms`` heard)       quiet, or ``min_heard_ms`` of it played
Pause      ``ms`` of silence frames                   nothing sent for ``ms``
PressKey   a ``dtmf`` event                           a ``dtmf`` message (interrupts playback as
                                                      ``interruptible`` allows)
SendRaw    the frame as is (bytes: binary frame)      the message as is
HangUp     ``stop``, then close                       close 1000, action ``completed``
Drop       close without ``stop``                     socket breaks: action ``failed``, and the
                                                      action's TwiML is followed (a reconnect
                                                      continues the script)
=========  =========================================  ==========================================

A script is a sequence of steps; it ends with a hang-up unless it says otherwise. Every
caller returns a ``CallRecord`` (or its per-protocol subclass) with the common fields below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

TTS_CHARS_PER_S = 15.0  # how fast a caller (and Twilio's TTS) speaks, for durations from text


@dataclass(frozen=True, slots=True)
class Step:
    """One thing the caller does: one of the classes below."""


@dataclass(frozen=True, slots=True)
class Say(Step):
    """The caller says ``text``, speaking for ``ms`` (by default as long as the text takes at
    15 chars/s, at least 300 ms); ``seed`` varies the voice of the simulated audio."""

    text: str = ""
    ms: int | None = None
    seed: int = 1

    @property
    def speech_ms(self) -> int:
        if self.ms is not None:
            return self.ms
        return max(300, round(len(self.text) / TTS_CHARS_PER_S * 1000))


@dataclass(frozen=True, slots=True)
class Listen(Step):
    """Stay quiet until the agent is ``quiet`` (it answered since the caller last spoke and its
    audio finished playing) or ``playing`` (``min_heard_ms`` of its current reply played), or
    until ``timeout_ms`` passed."""

    until: Literal["quiet", "playing"] = "quiet"
    min_heard_ms: float = 200
    timeout_ms: int = 10_000


@dataclass(frozen=True, slots=True)
class Pause(Step):
    """The caller is silent for ``ms`` (real time), whatever the agent does."""

    ms: int


@dataclass(frozen=True, slots=True)
class PressKey(Step):
    """The caller presses a DTMF key."""

    digit: str


@dataclass(frozen=True, slots=True)
class SendRaw(Step):
    """Send a frame as it is (malformed-input tests): text, or bytes as a binary frame."""

    data: str | bytes


@dataclass(frozen=True, slots=True)
class HangUp(Step):
    """The caller hangs up (a script's end implies it)."""


@dataclass(frozen=True, slots=True)
class Drop(Step):
    """The connection breaks on Twilio's side: the socket closes without a goodbye."""


Script = Sequence[Step]
CallProtocol = Literal["media-streams", "conversation-relay"]


@dataclass(slots=True)
class CallRecord:
    """What every simulated call observed; times are ``time.monotonic()`` seconds.

    ``protocol`` is None when the webhook's TwiML connected no socket (a refusal, a 403).
    """

    call_sid: str
    to: str
    protocol: CallProtocol | None = None
    webhook_status: int = 0  # 0 when the call started from TwiML given to the caller
    twiml: str = ""
    socket_url: str = ""  # the <Stream>/<ConversationRelay> url; "" when none was opened
    parameters: dict[str, str] = field(default_factory=dict)
    ws_status: int | None = None  # HTTP status when the upgrade was refused
    closed_by: Literal["server", "caller", ""] = ""
    close_code: int | None = None
    action_url: str = ""
    action_status: int | None = None
    action_twiml: str | None = None

    @property
    def heard_ms(self) -> float:
        """Agent audio the caller heard, in ms."""
        return 0.0

    @property
    def greeting_latency_ms(self) -> float | None:
        """From the socket's start to the first agent audio played."""
        return None

    def turn_latencies_ms(self) -> list[float]:
        """For each caller utterance: its end to the agent's next audio played."""
        return []

    @property
    def barge_ins(self) -> int:
        """How many times the caller's input stopped the agent's playback."""
        return 0

    def summary(self) -> dict[str, object]:
        """What the caller heard and when, for printing (``voiceagent simulate``)."""
        return {
            "call_sid": self.call_sid,
            "to": self.to,
            "protocol": self.protocol,
            "webhook_status": self.webhook_status,
            "heard_ms": self.heard_ms,
            "greeting_latency_ms": self.greeting_latency_ms,
            "turn_latencies_ms": self.turn_latencies_ms(),
            "barge_ins": self.barge_ins,
            "closed_by": self.closed_by,
            "action_twiml": self.action_twiml,
        }
