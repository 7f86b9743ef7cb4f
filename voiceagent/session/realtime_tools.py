"""Tool calls and the agent's end of a realtime call, without I/O: events in, commands out.

`RealtimeTools` is the part of `RealtimeCall` that exists only when the number has tools
(realtime_call.py feeds it every non-audio upstream event; audio never comes here):

- a function call whose arguments are complete becomes `RunTool` (the mode runs it as a task);
  its result comes back through `finished`: the `function_call_output` goes up at once, the
  call and its output go into the history, the time into the turn's `tool_ms`;
- the follow-up reply: Inworld now starts it by itself after the outputs; an older server
  waits for `response.create`. We send one only if no response started within
  FOLLOW_UP_GRACE_S (`Wake`, then `wake`), so one output never gets two replies;
- caller input (speech, a key) while calls run cancels them (`CancelTool`) and answers each
  with a `cancelled` output at once: the model never waits, and no follow-up is asked for
  (the caller's new turn gets the reply). Should Inworld start its automatic follow-up to
  those outputs while the caller is still talking, that response is cancelled at once (its
  audio dropped): the reply belongs to what the caller is saying;
- `end_call` / `transfer_call` close the call once everything the agent said after them was
  heard: outputs sent, no follow-up pending, no response generating, every mark echoed (the
  machine marks the end of each response's audio), and quiet for FOLLOW_UP_GRACE_S; at
  most GOODBYE_LIMIT_S after the call. Then `call.end(AGENT_ENDED)` (and `call.transfer`).
"""

from __future__ import annotations

from voiceagent.logging import get_logger
from voiceagent.protocols import inworld_realtime as rt
from voiceagent.session.call import CallSession, EndReason
from voiceagent.session.commands import (
    CallCommand,
    CancelTool,
    RunTool,
    SendUpstream,
    StopCall,
    Wake,
)
from voiceagent.session.playback import PlaybackTracker
from voiceagent.tools.calls import (
    CallAction,
    ChangeTurnTaking,
    EndCall,
    SwitchLanguage,
    ToolCall,
    ToolResult,
    Transfer,
    cancelled,
    refused,
)
from voiceagent.tools.language import realtime_language_update
from voiceagent.tools.realtime_calls import FunctionCallTracker
from voiceagent.tools.turn_taking import realtime_turn_taking_update

log = get_logger("voiceagent.realtime")

MAX_CALLS_PER_TURN = 8
"""Tool calls one caller turn may make; later ones are answered `refused`, not run."""
FOLLOW_UP_GRACE_S = 0.5
"""How long Inworld has to start the follow-up by itself before we send `response.create`."""
CLOSE_POLL_S = 0.1
"""How often a closing call checks that the agent's last words were heard."""
GOODBYE_LIMIT_S = 15.0
"""The longest a call waits, after `end_call` / `transfer_call`, for its last words."""
VOICEMAIL_LIMIT_S = 120.0
"""The longest a voicemail leg waits for its message to be generated and heard."""


class RealtimeTools:
    """The tool side of one realtime call (see the module docstring)."""

    def __init__(
        self, call: CallSession, tracker: PlaybackTracker, vad: str = "semantic_vad"
    ) -> None:
        self.call = call
        self.tracker = tracker
        self.vad = vad  # the session's turn detection type (`set_turn_taking` needs semantic)
        self.session_changes: dict[str, str] = {}
        """The partial `session.update`s made mid-call, newest per kind: a replacement session
        (after an Inworld drop) gets them again after the plan's own."""
        self._speaking = False  # between the caller's speech_started and speech_stopped
        self._held = False  # outputs were cancelled while the caller is speaking
        self.calls = FunctionCallTracker()
        self.running: dict[str, tuple[ToolCall, float]] = {}  # call_id -> (call, started)
        self.closing: CallAction | None = None
        self._close_by = 0.0
        self._quiet_since = 0.0
        self._follow_up_at: float | None = None
        self._calling: str | None = None  # the last response that called tools
        self._turn_calls = 0  # calls made since the caller's last input
        self._awaiting_reply = False  # a voicemail leg: its message is not done yet
        self._ending = ""  # how the call is being ended, when not by a tool ("voicemail")

    def end_after_reply(self, now: float, how: str = "voicemail") -> None:
        """End the call once the next response is done and heard (a voicemail leg)."""
        self.closing, self._close_by = EndCall(), now + VOICEMAIL_LIMIT_S
        self._awaiting_reply, self._ending = True, how

    # -- events ---------------------------------------------------------------------------------
    def on_event(self, event: object, now: float, response_id: str | None) -> list[CallCommand]:
        """Any non-audio upstream event; `response_id` is the machine's active response."""
        if isinstance(event, rt.SpeechStarted):
            self._speaking = True
            return self.caller_input(now)
        if isinstance(event, rt.SpeechStopped):
            self._speaking = self._held = False
        elif isinstance(event, rt.ResponseCreated):
            self._follow_up_at = None  # whoever started it, the follow-up is under way
            if self._speaking and self._held:
                return self._hold(event.response.id)
            self._follow_up_of_turn(event.response.id)
        elif isinstance(event, rt.ResponseDone):
            self._quiet_since = now
            self._awaiting_reply = False
        calls = self.calls.on_event(event)
        if not calls:
            return []
        owner = getattr(event, "response_id", None) or response_id or "tools"
        self.call.history.add_tool_calls(owner, calls)
        self._calling = owner
        commands: list[CallCommand] = []
        for call in calls:
            self._turn_calls += 1
            if self._turn_calls > MAX_CALLS_PER_TURN:
                result = refused(call)
                commands += [*self._answer(result, now), CancelTool(result)]
            else:
                self.running[call.call_id] = (call, now)
                commands.append(RunTool(call))
        return commands

    def finished(self, result: ToolResult, now: float) -> list[CallCommand]:
        """A call's result is back: its output (ignored if a barge-in already answered it)."""
        entry = self.running.pop(result.call.call_id, None)
        if entry is None:
            return []
        commands = self._answer(result, now)
        if result.ok:  # a built-in's session change goes before the follow-up
            commands[:0] = self._session_change(result.action)
        if self.calls.needs_follow_up:
            self._follow_up_at = now + FOLLOW_UP_GRACE_S
            commands.append(Wake(FOLLOW_UP_GRACE_S))
        if result.ok and isinstance(result.action, EndCall | Transfer) and self.closing is None:
            self.closing, self._close_by = result.action, now + GOODBYE_LIMIT_S
            log.info("call_closing", action=_how(result.action))
            commands.append(Wake(CLOSE_POLL_S))
        return commands

    def _session_change(self, action: object) -> list[CallCommand]:
        """`set_language` / `set_turn_taking`: the partial `session.update` (if any)."""
        update: str | None
        if isinstance(action, SwitchLanguage):
            self.call.languages.append(action.code)
            log.info("language_switched", language=action.code)
            kind, update = "language", realtime_language_update(action)
        elif isinstance(action, ChangeTurnTaking):
            update = realtime_turn_taking_update(action.preset, self.vad)
            log.info("turn_taking_changed", preset=action.preset.name, sent=update is not None)
            kind = "turn_taking"
        else:
            return []
        if update is None:
            return []
        self.session_changes[kind] = update
        return [SendUpstream(update)]

    def caller_input(self, now: float) -> list[CallCommand]:
        """The caller spoke or pressed a key: cancel running calls, answer them `cancelled`."""
        self._follow_up_at, self._turn_calls = None, 0
        commands: list[CallCommand] = []
        for call, started in list(self.running.values()):
            del self.running[call.call_id]
            result = cancelled(call, (now - started) * 1000.0)
            commands += [*self._answer(result, now), CancelTool(result)]
            self._held = self._speaking
        return commands

    def wake(self, now: float, *, generating: bool, playing: bool) -> list[CallCommand]:
        """A `Wake` is due: send the follow-up if none started; close the call when due."""
        if self._follow_up_at is not None and now >= self._follow_up_at:
            self._follow_up_at = None
            if self.calls.needs_follow_up:
                self._quiet_since = now
                log.info("tool_follow_up_requested")
                return [SendUpstream(rt.dump(rt.ResponseCreate()))]
        if self.closing is None or self.call.end_reason is not None:
            return []
        busy = bool(self.running) or self._follow_up_at is not None or generating or playing
        busy = busy or self._awaiting_reply
        if now < self._close_by and (busy or now - self._quiet_since < FOLLOW_UP_GRACE_S):
            return [Wake(CLOSE_POLL_S)]
        return self._close(timed_out=now >= self._close_by)

    # -- rules ------------------------------------------------------------------------------------
    def _answer(self, result: ToolResult, now: float) -> list[CallCommand]:
        call = self.call
        call.history.add_tool_result(result)
        call.counters.tool_calls += 1
        call.counters.tool_errors += result.is_error
        if call.latency.current is not None:
            call.latency.current.tools_ran(1, result.duration_ms)
        self.calls.output_sent(result.call.call_id)
        self._quiet_since = now
        item = rt.Item.function_call_output(result.call.call_id, result.output)
        return [SendUpstream(rt.dump(rt.ConversationItemCreate(item=item)))]

    def _follow_up_of_turn(self, response_id: str | None) -> None:
        """The reply after a turn's tool calls answers that turn: the turn's agent text is
        what the caller heard of it (as in relay mode)."""
        current = self.call.latency.current
        if current is not None and response_id and current.response_id == self._calling:
            current.response_id = response_id

    def _hold(self, response_id: str | None) -> list[CallCommand]:
        """A response started over the caller's speech, after cancelled outputs: cancel it."""
        self.tracker.speech_started()  # cuts the response just begun: its audio is dropped
        log.info("follow_up_over_caller_cancelled")
        return [SendUpstream(rt.dump(rt.ResponseCancel(response_id=response_id)))]

    def _close(self, *, timed_out: bool) -> list[CallCommand]:
        action = self.closing
        if isinstance(action, Transfer):
            self.call.transfer = action.destination_name
        how = self._ending or _how(action)
        self.call.end(EndReason.AGENT_ENDED, how)
        log.info("agent_ended_call", how=how, waited_out=timed_out or None)
        return [StopCall()]


def _how(action: CallAction | None) -> str:
    return "transfer" if isinstance(action, Transfer) else "end_call"
