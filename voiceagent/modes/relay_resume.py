"""ConversationRelay `applicationReconnect` for relay-router: checkpoint the call, resume it.

While a leg runs, its conversation is checkpointed to the shared call store after every event
that changed it (an answered input, a reply that ended), so when Twilio reconnects a dropped
socket, on this instance or another, or after this one crashed, the new socket's leg finds it:
`resume_point` returns it when the new `setup` is the same call and the same leg (same
`attempt` / `failover_from` parameters). What a reconnected leg then does (skip replayed
inputs, answer an unfinished reply again) is `InputLedger` and `RelayCall.resume`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from voiceagent.logging import get_logger
from voiceagent.modes.call_run import CallRun
from voiceagent.session.relay_call import RelayCall
from voiceagent.store.live.checkpoint import Checkpoint

log = get_logger("voiceagent.relay")


def leg_of(parameters: Mapping[str, str]) -> str:
    """Which leg of a call a socket belongs to, from its `<Parameter>`s."""
    return f"{parameters.get('attempt', '1')}|{parameters.get('failover_from', '')}"


async def resume_point(run: CallRun) -> Checkpoint | None:
    """The checkpoint this socket resumes (a reconnect of its leg), or None (a new leg)."""
    if not run.plan.relay.application_reconnect:
        return None
    store = run.services.stores.call_state
    checkpoint = await store.get_checkpoint(run.call.call_sid)
    if checkpoint is None or checkpoint.leg != leg_of(run.start.parameters):
        return None
    return checkpoint


def resumed_voice(run: CallRun, checkpoint: Checkpoint) -> str | None:
    """The Router voice of the language the call had switched to (`set_language`), if any."""
    choice = next((c for c in run.plan.agent.languages if c.code == checkpoint.language), None)
    return choice.voice if choice is not None else None


def apply_checkpoint(run: CallRun, checkpoint: Checkpoint) -> None:
    """Carry the conversation on: its history, its turn numbering, one more reconnect."""
    call = run.call
    call.history.restore(checkpoint.history)
    call.counters.reconnects = 1  # this leg's; the record adds up every leg's
    call.latency.started = checkpoint.inputs + 1
    log.info(
        "relay_reconnected", reconnects=checkpoint.reconnects + 1,
        restored_messages=len(call.history), pending=checkpoint.pending is not None,
    )  # fmt: skip


class Checkpointer:
    """Writes the leg's checkpoint (only with `application_reconnect`, only while its socket is
    open: a leg whose socket dropped leaves the checkpoint to the reconnected one)."""

    def __init__(self, run: CallRun, machine: RelayCall) -> None:
        self.run, self.machine = run, machine
        self.enabled = run.plan.relay.application_reconnect
        self.leg = leg_of(run.start.parameters)

    async def save(self) -> None:
        if not self.enabled or self.run.phone.closed:
            return
        history = tuple(self.run.call.history.messages())
        if self.machine.ledger.pending is not None:
            history = _without_unfinished_reply(history)
        checkpoint = self.machine.ledger.checkpoint(self.leg, history)
        if self.run.call.languages:  # Twilio keeps its language; the Router voice must follow
            checkpoint = replace(checkpoint, language=self.run.call.languages[-1])
        await self.run.services.stores.call_state.put_checkpoint(self.run.call.call_sid, checkpoint)


def _without_unfinished_reply(history: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    """The history up to the input being answered: the reply cut by a drop is answered anew."""
    end = len(history)
    while end and history[end - 1].get("role") == "assistant" and not history[end - 1].get(
        "tool_calls"
    ):  # fmt: skip
        end -= 1
    return history[:end]
