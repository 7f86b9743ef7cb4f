"""The webhooks part of `voiceagent simulate`: one more call, to the first number with
webhooks, whose context and events go to the rehearsal's local `HooksReceiver` (every webhook
of a rehearsed config points there; its context greets the caller by name); prints the context
the call used and the `call.ended` event delivered, with its signature checked as a receiver
would."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from voiceagent.config import Config
from voiceagent.sim.caller import place_call
from voiceagent.sim.hooks_receiver import HooksReceiver
from voiceagent.sim.script import HangUp, Listen, Say
from voiceagent.sim.webhooks import SimTarget, new_sid
from voiceagent.webhooks.events import event_id

EVENT_WAIT_S = 15.0


def hooks_number(config: Config) -> str | None:
    """The first configured number with a context or events webhook (None: none has)."""
    for number in sorted(config.numbers):
        plan = config.plan_for(number, "CA" + "0" * 32)
        if plan is not None and (plan.webhooks.call_context or plan.webhooks.call_events):
            return number
    return None


async def hooks_call(target: SimTarget, receiver: HooksReceiver, number: str) -> list[str]:
    """Place the call, wait for its event; the lines to print."""
    sid = new_sid("CA")
    async with aiohttp.ClientSession() as http:
        await place_call(target, number, [Listen(), Say("Hi, it's me."), Listen(), HangUp()],
                         call_sid=sid, http=http)  # fmt: skip
    lines = [f"\nwebhooks: {number}  {sid}"]
    asked = [ok for c, ok in zip(receiver.contexts, receiver.context_verified, strict=True)
             if c.get("call_sid") == sid]  # fmt: skip
    if asked:
        answer = receiver.context_answer
        shown = answer.decode() if isinstance(answer, bytes) else json.dumps(answer)
        verified = "verified" if all(asked) else "NOT verified"
        lines.append(f"  context asked ({len(asked)}, signature {verified}); used: {shown}")
    wanted = event_id(sid, "call.ended")
    try:
        async with asyncio.timeout(EVENT_WAIT_S):
            while wanted not in receiver.events:
                await receiver.wait_events(len(receiver.events) + 1, within=EVENT_WAIT_S)
    except TimeoutError:
        lines.append(f"  call.ended: not delivered within {EVENT_WAIT_S:.0f} s")
        return lines
    event = receiver.events[wanted]
    delivery = next(d for d in receiver.deliveries if d.event_id == wanted)
    lines.append(
        f"  call.ended {wanted} delivered, signature "
        f"{'verified' if delivery.verified else 'NOT verified'}: reason {event['reason']}, "
        f"{event['duration_s']:.1f} s, {len(event['turns'])} turns, variables "
        f"{json.dumps(event['variables'])}"
    )
    greeting = next((t.get("text") for t in event["turns"] if t["role"] == "agent"), None)
    if greeting:
        lines.append(f"  the caller heard: {greeting.strip()}")
    return lines
