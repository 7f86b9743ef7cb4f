"""The outbound part of `voiceagent simulate`: a person, an answering machine and a phone
nobody answers, called through `POST /calls`, the fake Twilio REST API playing each callee.

``OutboundRehearsal`` starts the fake before the app (the app's TWILIO_* settings point at it),
places the three calls once the app serves, and prints what each callee heard.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from voiceagent.config import Config
from voiceagent.outbound.client import CallsClient
from voiceagent.sim.callee import Callee, CalleeRecord, Callees
from voiceagent.sim.fake_twilio_rest import FakeTwilioRest
from voiceagent.sim.webhooks import SimTarget

# (from, to, who answers, variables): the sample config's outbound numbers
CALLS = (
    ("+18005550106", "+14155550161", Callee("person"), {"name": "Ana"}),
    ("+18005550107", "+14155550162", Callee("machine", greeting_s=2.0), {"name": "Ben"}),
    ("+18005550106", "+14155550163", Callee("no-answer", no_answer_s=2.0), {"name": "Cy"}),
)


@dataclass
class OutboundLine:
    """One outbound call as printed."""

    number: str
    callee: str
    kind: str
    call_sid: str = ""
    record: CalleeRecord | None = None
    refused: str = ""


@dataclass
class OutboundRehearsal:
    """The fake Twilio REST API and the callees for one rehearsal."""

    auth_token: str
    admin_token: str = field(default_factory=lambda: secrets.token_hex(16))
    twilio: FakeTwilioRest | None = None
    _target: list[SimTarget] = field(default_factory=list)

    async def start(self) -> dict[str, Any]:
        """Start the fake; the Settings fields the app needs to use it."""
        self.twilio = FakeTwilioRest(auth_token=self.auth_token,
                                     url_map=lambda url: self._target[0].local(url))  # fmt: skip
        await self.twilio.start()
        return {"admin_token": self.admin_token, "twilio_account_sid": self.twilio.account_sid,
                "twilio_api_base_url": self.twilio.url, "outbound_cps": 5.0}  # fmt: skip

    async def close(self) -> None:
        if self.twilio is not None:
            await self.twilio.close()

    async def place(self, config: Config, target: SimTarget) -> list[OutboundLine]:
        """Place the three sample calls from the config's outbound numbers (none without
        one); each line once the call ended."""
        assert self.twilio is not None
        self._target.append(target)
        for number in config.numbers:
            self.twilio.add_number(number)
        calls = _calls_for(config)
        async with aiohttp.ClientSession() as http:
            callees = Callees(self.twilio, target, http, {to: who for _, to, who, _ in calls})
            self.twilio.player = callees
            client = CallsClient(http, target.base_url, self.admin_token)

            async def one(
                number: str, to: str, who: Callee, variables: dict[str, str]
            ) -> OutboundLine:
                line = OutboundLine(number, to, who.kind)
                placed = await client.place(number, to, variables)
                if not placed.call_sid:
                    line.refused = f"{placed.error}: {placed.message}"
                    return line
                line.call_sid = placed.call_sid
                line.record = await callees.wait(placed.call_sid, within=60)
                return line

            return list(await asyncio.gather(*(one(*call) for call in calls)))


def _calls_for(config: Config) -> list[tuple[str, str, Callee, dict[str, str]]]:
    """The sample's calls, from the config's own outbound numbers when it has other ones
    (the person and the no-answer from the first, the machine from the last)."""
    if all(number in config.numbers for number, *_ in CALLS):
        return list(CALLS)
    outbound = [n for n, entry in config.numbers.items() if entry.outbound is not None]
    if not outbound:
        return []
    picks = (outbound[0], outbound[-1], outbound[0])
    return [(number, *rest) for number, (_, *rest) in zip(picks, CALLS, strict=True)]  # type: ignore[misc]


def print_outbound(lines: list[OutboundLine], text: dict[str, list[tuple[str, str]]]) -> None:
    """What each outbound call's callee heard (agent texts from the call records)."""
    if not lines:
        return
    print("\noutbound calls (POST /calls; the fake Twilio plays each callee):")
    for line in lines:
        print(f"\n{line.number} -> {line.callee}  ({line.kind})  {line.call_sid}")
        record = line.record
        if record is None:
            print(f"  refused: {line.refused}")
            continue
        verdict = record.amd_posted or "-"
        legs = ", ".join(leg.protocol or "-" for _, leg in record.legs) or "none"
        print(f"  status {record.status}; answered by {verdict}; legs: {legs}; heard "
              f"{record.heard_ms / 1000:.1f} s of agent audio")  # fmt: skip
        for user, agent in text.get(line.call_sid, []):
            if user:
                print(f"    callee: {user}")
            print(f"    agent: {agent.strip() or '(nothing)'}")
