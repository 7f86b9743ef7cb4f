"""The `<Connect action>` answer to a transfer the agent made, for both modes.

The call carried only the destination NAME (realtime: the shared outcome; relay: the `end`
`handoffData`). The number comes from the call's own plan, never from the request.
"""

from __future__ import annotations

from voiceagent.config import CallPlan
from voiceagent.logging import clip, get_logger
from voiceagent.protocols import twiml
from voiceagent.tools.handoff import destination_number

log = get_logger("voiceagent.call")


def transfer_twiml(plan: CallPlan | None, destination: str, call_sid: str) -> str:
    """`<Dial>` the number the plan lists for `destination` (the agent spoke any announcement
    before); the apology and a hang-up if the plan does not list it (any more)."""
    number = destination_number(plan.agent.tools, destination) if plan is not None else None
    if plan is None or number is None:
        log.warning("transfer_unknown_destination", call_sid=clip(call_sid, 40),
                    destination=clip(destination, 40))  # fmt: skip
        return twiml.say_hangup(plan.agent.apology if plan is not None else "")
    log.info("action_transfer", call_sid=clip(call_sid, 40), destination=destination)
    return twiml.dial(number)
