"""The legs of an outbound call, without I/O: what ``/voice`` answers and what AMD changes.

Twilio requests ``/voice`` when the callee picks up (``Direction=outbound-api``; our number
is ``From``). With ``amd: true`` Twilio's asynchronous answering-machine detection listens
meanwhile and posts its verdict to ``/call-status/amd``; what happens then:

======================  ===========================  =====================================
first_speaker           until AMD answers             AMD says
======================  ===========================  =====================================
callee (default)        ``<Pause>`` (screening: no    human/unknown: the agent leg, which
                        Inworld session, the agent    greets; machine: the voicemail leg or
                        never talks over a greeting)  hang up; no verdict in time: the agent
agent                   the agent leg at once         machine: the voicemail leg or hang up
======================  ===========================  =====================================

A leg change is a REST update of the call (``Url=/voice?amd=<verdict>``), so whichever
instance gets the AMD callback can make it, and whichever gets the new ``/voice`` serves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from voiceagent.config import CallPlan
from voiceagent.config_models import OutboundConfig
from voiceagent.outbound.rules import render

MACHINE: Final = frozenset(
    {"machine_end_beep", "machine_end_silence", "machine_end_other", "machine_start"}
)
HANG_UP: Final = frozenset({"fax"})
PERSON: Final = frozenset({"human", "unknown"})
ANSWERED_BY: Final = MACHINE | HANG_UP | PERSON
SCREEN_S: Final = 40  # the screening pause: AMD's own limit (Twilio's default 30 s) and more


class Leg(StrEnum):
    SCREEN = "screen"  # silence while AMD listens
    AGENT = "agent"  # the agent converses
    VOICEMAIL = "voicemail"  # the agent leaves the message, then hangs up
    HANG_UP = "hang_up"  # nothing to say: end the call


class AmdAction(StrEnum):
    NOTHING = "nothing"
    REDIRECT = "redirect"  # Url=/voice?amd=<verdict>
    HANG_UP = "hang_up"  # Status=completed


def is_outbound(form: Mapping[str, str]) -> bool:
    """Whether a webhook is about a call we placed (``outbound-api``; its ``From`` is ours)."""
    return form.get("Direction", "").startswith("outbound")


def our_number(form: Mapping[str, str]) -> str:
    """The configured number a webhook's call belongs to: ``To``, or ``From`` if outbound."""
    return form.get("From", "") if is_outbound(form) else form.get("To", "")


def verdict_kind(answered_by: str | None) -> str:
    """``person``, ``machine``, ``hang_up`` or ``none`` (no verdict yet, or a timeout)."""
    if answered_by in MACHINE:
        return "machine"
    if answered_by in HANG_UP:
        return "hang_up"
    if answered_by in PERSON:
        return "person"
    return "none"


def choose_leg(outbound: OutboundConfig, amd: str | None) -> Leg:
    """The leg ``/voice`` serves: ``amd`` is the verdict in its query (None: first request)."""
    if amd is None:
        screen = outbound.amd and outbound.first_speaker == "callee"
        return Leg.SCREEN if screen else Leg.AGENT
    kind = verdict_kind(amd)
    if kind == "machine":
        return Leg.VOICEMAIL if outbound.voicemail.action == "leave_message" else Leg.HANG_UP
    if kind == "hang_up":
        return Leg.HANG_UP
    return Leg.AGENT  # a person, unknown, or no verdict in time ("timeout")


def amd_action(outbound: OutboundConfig, answered_by: str) -> AmdAction:
    """What the AMD verdict changes for a call in progress."""
    kind = verdict_kind(answered_by)
    if kind == "machine":
        leave = outbound.voicemail.action == "leave_message"
        return AmdAction.REDIRECT if leave else AmdAction.HANG_UP
    if kind == "hang_up":
        return AmdAction.HANG_UP
    if kind == "person" and outbound.first_speaker == "callee":
        return AmdAction.REDIRECT  # end the screening: the agent greets
    return AmdAction.NOTHING


def leg_plan(
    plan: CallPlan, outbound: OutboundConfig, variables: Mapping[str, str], leg: Leg,
    *, amd: str | None,
) -> CallPlan:  # fmt: skip
    """The call's plan for ``leg``: outbound, its variables filled into the agent's
    instructions, greeting and voicemail message (a number with a call-context webhook has
    these texts filled once the context answered, its variables over these). The agent
    greets on its leg when it speaks first, or when the callee already spoke (AMD heard a
    person, or gave no verdict in time)."""
    agent = plan.agent
    if plan.webhooks.call_context is None:
        texts = ("instructions", "greeting")
        agent = agent.model_copy(update={f: render(getattr(agent, f), variables) for f in texts})
    greets = outbound.first_speaker == "agent" or amd is not None
    update: dict[str, object] = {"direction": "outbound", "variables": dict(variables)}
    if leg is Leg.VOICEMAIL:  # with a context webhook, filled once it answered (its variables)
        message = outbound.voicemail.message
        hooked = plan.webhooks.call_context is not None
        update["voicemail"] = message if hooked else render(message, variables)
        update["relay"] = plan.relay.model_copy(update={"greeting_source": "inworld"})
    elif not greets:
        agent = agent.model_copy(update={"greeting": ""})
        update["realtime"] = plan.realtime.model_copy(update={"greet_first": False})
    return plan.model_copy(update={**update, "agent": agent})
