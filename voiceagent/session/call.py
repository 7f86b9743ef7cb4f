"""The call session: identity, counters, end reason and latency of one call. No I/O.

A `CallSink` receives the call's milestones (started, each finished turn, ended); the telemetry
store implements it by queueing writes, so nothing here ever awaits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from voiceagent.session.history import History
from voiceagent.session.latency import LatencyClock, TurnTiming


class EndReason(StrEnum):
    """Why a call's phone socket ended; drives `/voice/action` and the call_ended line."""

    CALLER_HANGUP = "caller_hangup"  # Twilio `stop` / ConversationRelay hang-up
    CALLER_DISCONNECTED = "caller_disconnected"  # socket closed without `stop`
    AGENT_ENDED = "agent_ended"  # we ended the session on purpose (handoff, end)
    UPSTREAM_FAILED = "upstream_failed"  # Inworld refused, failed or dropped
    PROTOCOL_ERROR = "protocol_error"  # the phone side broke its protocol
    DRAINED = "drained"  # server shutdown after the drain grace period
    INTERNAL_ERROR = "internal_error"  # a bug: logged with a traceback


@dataclass(slots=True)
class CallCounters:
    frames_in: int = 0
    frames_out: int = 0
    marks_out: int = 0
    barge_ins: int = 0
    turns: int = 0
    dtmf: int = 0
    bad_frames: int = 0
    upstream_errors: int = 0
    tool_calls: int = 0
    tool_errors: int = 0  # tool calls that failed (`ToolResult.is_error`)
    reconnects: int = 0  # ConversationRelay applicationReconnect legs resumed
    upstream_reconnects: int = 0  # Inworld Realtime sessions replaced mid-call
    upstream_fillers: int = 0  # reconnect gaps the configured filler was played in
    provider_switches: int = 0  # ConversationRelay configUpdated naming a provider


@dataclass(slots=True)
class CallSession:
    """State of one call shared by every mode."""

    call_sid: str
    number: str
    mode: str
    arm: str | None = None
    experiment: str | None = None
    stream_sid: str = ""
    started_wall: float = field(default_factory=time.time)
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    end_reason: EndReason | None = None
    end_detail: str = ""
    upstream_failure: str | None = None
    failover_from: str | None = None
    transfer: str | None = None  # the destination NAME a `transfer_call` handed the caller to
    record_transcripts: bool = False  # the plan's record_transcripts: sinks may keep texts
    counters: CallCounters = field(default_factory=CallCounters)
    providers: list[str] = field(default_factory=list)  # named by configUpdated (failover)
    languages: list[str] = field(default_factory=list)  # switched to with set_language
    context: str | None = None  # how its call context settled (CallPlan.context)
    history: History = field(default_factory=History)
    latency: LatencyClock = field(default_factory=LatencyClock)
    tool_log: list[dict[str, Any]] = field(default_factory=list)
    """Per tool call: name, ok, ms (arguments only where transcripts are recorded)."""
    events: list[dict[str, Any]] = field(default_factory=list)
    """Outbox rows (call events) written with the call's end record, in its transaction."""

    def note_tool(self, name: str, ok: bool, ms: float, arguments: str) -> None:
        """Keep one tool call for the call's events (bounded: the first 200)."""
        if len(self.tool_log) < 200:
            entry: dict[str, Any] = {"name": name, "ok": ok, "ms": round(ms, 1)}
            if self.record_transcripts:
                entry["arguments"] = arguments[:4000]
            self.tool_log.append(entry)

    def end(self, reason: EndReason, detail: str = "", now: float | None = None) -> None:
        """Record the first reason the call ended; later reasons are consequences."""
        if self.end_reason is None:
            self.end_reason = reason
            self.end_detail = detail
            self.ended = time.monotonic() if now is None else now

    @property
    def ended_by(self) -> str:
        """Who or what ended the call: `caller`, `end_call` (the agent), `transfer`,
        `upstream_failure`, or the end reason itself (protocol error, drain, crash)."""
        reason = self.end_reason
        if reason in (EndReason.CALLER_HANGUP, EndReason.CALLER_DISCONNECTED):
            return "caller"
        if reason is EndReason.AGENT_ENDED:
            return "transfer" if self.transfer else "end_call"
        if reason is EndReason.UPSTREAM_FAILED:
            return "upstream_failure"
        return (reason or EndReason.INTERNAL_ERROR).value

    @property
    def duration_s(self) -> float:
        end = self.ended if self.ended is not None else time.monotonic()
        return round(end - self.started, 3)

    def summary(self) -> dict[str, Any]:
        """Fields of the one `call_ended` log line."""
        c = self.counters
        return {
            "reason": (self.end_reason or EndReason.INTERNAL_ERROR).value,
            "detail": self.end_detail,
            "ended_by": self.ended_by,
            "transfer": self.transfer,
            "upstream_failure": self.upstream_failure,
            "duration_s": self.duration_s,
            "frames_in": c.frames_in,
            "frames_out": c.frames_out,
            "marks_out": c.marks_out,
            "barge_ins": c.barge_ins,
            "turns": c.turns,
            "dtmf": c.dtmf,
            "bad_frames": c.bad_frames,
            "upstream_errors": c.upstream_errors,
            "tool_calls": c.tool_calls,
            "tool_errors": c.tool_errors,
            "reconnects": c.reconnects,
            "upstream_reconnects": c.upstream_reconnects,
            "upstream_fillers": c.upstream_fillers,
            "provider_switches": c.provider_switches,
            "providers": ",".join(self.providers) or None,
            "languages": ",".join(self.languages) or None,
            "arm": self.arm,
        }


class CallSink(Protocol):
    """Receives call milestones; implementations must not block (queue, then write)."""

    def call_started(self, call: CallSession) -> None: ...

    def turn_finished(self, call: CallSession, turn: TurnTiming) -> None: ...

    def call_ended(self, call: CallSession) -> None: ...


class NullSink:
    """A CallSink that keeps nothing."""

    def call_started(self, call: CallSession) -> None:
        return None

    def turn_finished(self, call: CallSession, turn: TurnTiming) -> None:
        return None

    def call_ended(self, call: CallSession) -> None:
        return None
