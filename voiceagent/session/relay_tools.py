"""Tool calls and the agent's end of a relay call, without I/O: the part of `RelayCall` that
exists only when the number has tools.

- A reply whose Router stream ended with `tool_calls` starts one round: the calls go into the
  history on the reply's assistant turn and become `RunTool` commands; each result goes into
  the history; when the round is complete `RelayCall` asks for the follow-up reply (history
  with the calls and results). A turn may chain MAX_TOOL_ROUNDS rounds; the next request then
  says `tool_choice: none`.
- An interrupt (or newer input, or a hang-up) during a round cancels it: every call still
  running gets its `cancelled` result in the history at once (`CancelTool`), so the history
  the next request carries is consistent.
- `end_call` / `transfer_call` end the call once the agent's last reply has been heard. There
  is no playback event (`relay_playout.Playout` estimates it); then ConversationRelay `end`
  (for a transfer with `handoffData` naming the destination), and if Twilio has not closed the
  socket END_GRACE_S later, we close it. At most GOODBYE_LIMIT_S after the call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from voiceagent.logging import get_logger
from voiceagent.protocols import conversation_relay as cr
from voiceagent.session.call import CallSession, EndReason
from voiceagent.session.commands import CallCommand, CancelTool, RunTool, SendPhone, StopCall, Wake
from voiceagent.session.latency import TurnTiming
from voiceagent.session.relay_playout import Playout
from voiceagent.tools.calls import CallAction, EndCall, ToolCall, ToolResult, Transfer, cancelled
from voiceagent.tools.handoff import transfer_handoff

log = get_logger("voiceagent.relay")

MAX_TOOL_ROUNDS = 3
"""Tool rounds one caller turn may chain before the model must answer in words."""
CLOSE_POLL_S = 0.2
GOODBYE_LIMIT_S = 15.0
VOICEMAIL_LIMIT_S = 120.0  # a voicemail leg: the message generated and heard
"""The longest a call waits, after `end_call` / `transfer_call`, for its last words."""
END_GRACE_S = 2.0
"""How long Twilio has to close the socket after our `end` before we close it."""


class RelayTools:
    """The tool side of one relay call (see the module docstring)."""

    def __init__(self, call: CallSession) -> None:
        self.call = call
        self.playout = Playout()
        self.pending: dict[str, ToolCall] = {}  # the running round's calls without a result
        self.rounds = 0  # rounds of the current caller turn
        self.closing: CallAction | None = None
        self._round_started = 0.0
        self._round_calls = 0
        self._close_by = 0.0
        self._end_sent = False
        self._ending = ""  # how the call is being ended, when not by a tool ("voicemail")

    def end_after_reply(self, now: float, how: str = "voicemail") -> None:
        """End the call once the replies under way were heard (a voicemail leg)."""
        self.closing, self._close_by, self._ending = EndCall(), now + VOICEMAIL_LIMIT_S, how

    @property
    def tool_choice(self) -> Literal["auto", "none"]:
        return "auto" if self.rounds < MAX_TOOL_ROUNDS else "none"

    def calls_made(
        self, response_id: str, calls: Sequence[ToolCall], now: float
    ) -> list[CallCommand]:
        """The reply `response_id` made `calls`: they happened; run them (unless the turn
        used its rounds and the model called tools even so: then they are left out)."""
        if self.rounds >= MAX_TOOL_ROUNDS:
            log.warning("tool_calls_ignored", calls=len(calls), rounds=self.rounds)
            return []
        self.call.history.add_tool_calls(response_id, calls)
        self.pending = {call.call_id: call for call in calls}
        self._round_started, self._round_calls = now, len(calls)
        self.rounds += 1
        return [RunTool(call) for call in calls]

    def result(self, result: ToolResult, now: float, timing: TurnTiming | None) -> bool:
        """Record a call's result; True when it completed the round (the follow-up is due).
        A result of a cancelled round is ignored (its `cancelled` result is recorded)."""
        if self.pending.pop(result.call.call_id, None) is None:
            return False
        self._record(result)
        if result.ok and isinstance(result.action, EndCall | Transfer) and self.closing is None:
            self.closing, self._close_by = result.action, now + GOODBYE_LIMIT_S
            log.info("call_closing", action=_how(result.action))
        if self.pending:
            return False
        if timing is not None:
            timing.tools_ran(self._round_calls, (now - self._round_started) * 1000.0)
        return True

    def cancel(self, now: float) -> list[CallCommand]:
        """Cancel the running round: each call left gets its `cancelled` result."""
        commands: list[CallCommand] = []
        for call in self.pending.values():
            result = cancelled(call, (now - self._round_started) * 1000.0)
            self._record(result)
            commands.append(CancelTool(result))
        self.pending = {}
        return commands

    def wake(self, now: float, *, replying: bool) -> list[CallCommand]:
        """While closing: `end` once the last reply was heard; close if Twilio did not."""
        if self.closing is None:
            return []
        if self._end_sent:
            return [StopCall()]
        remaining = None if replying else self.playout.remaining_s(now)
        if now < self._close_by and (remaining is None or remaining > 0):
            wait = CLOSE_POLL_S if remaining is None else remaining
            return [Wake(min(wait, self._close_by - now))]
        return self._end(timed_out=now >= self._close_by)

    def _end(self, *, timed_out: bool) -> list[CallCommand]:
        action, handoff = self.closing, None
        if isinstance(action, Transfer):
            self.call.transfer = action.destination_name
            handoff = transfer_handoff(action.destination_name)
        how = self._ending or _how(action)
        self.call.end(EndReason.AGENT_ENDED, how)
        self._end_sent = True
        log.info("agent_ended_call", how=how, waited_out=timed_out or None)
        return [SendPhone(cr.dump(cr.End(handoff_data=handoff))), Wake(END_GRACE_S)]

    def _record(self, result: ToolResult) -> None:
        self.call.history.add_tool_result(result)
        self.call.counters.tool_calls += 1
        self.call.counters.tool_errors += result.is_error


def _how(action: CallAction | None) -> str:
    return "transfer" if isinstance(action, Transfer) else "end_call"
