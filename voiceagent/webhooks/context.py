"""The call context: what the business's context webhook may answer, and how it changes a
call's plan. No I/O (the fetch: context_fetch.py).

The answer may carry `variables` (string → string) that fill `{{name}}` placeholders in the
number's instructions and greeting, `instructions` and `greeting` replacing the YAML's, `agent`
(the agent fields the YAML allows, validated the same way), `turn_taking` (the call's
turn-taking settings: the eagerness in realtime, the ConversationRelay settings in relay) and
`reject` (say its message, hang up). Anything else, or a value out of bounds, fails validation:
the call then goes on with the YAML settings.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from voiceagent.config_knobs import TurnTakingSettings
from voiceagent.config_models import AgentOverrides, CallPlan

TEMPLATED = ("instructions", "greeting", "failover_greeting")
"""The agent texts whose `{{name}}` placeholders the context's variables fill (and an outbound
voicemail leg's message, `CallPlan.voicemail`)."""
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}")
MAX_ANSWER_BYTES = 64 * 1024
VarName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
VarValue = Annotated[str, StringConstraints(max_length=2000)]


class ContextStatus(StrEnum):
    """How a call's context was settled (the metric's `outcome` label)."""

    APPLIED = "applied"  # the answer was used
    REJECTED = "rejected"  # the answer said to refuse the call
    TIMEOUT = "timeout"  # no answer within timeout_ms: YAML
    HTTP_ERROR = "http_error"  # non-2xx or the request failed: YAML
    INVALID = "invalid"  # not JSON or failed validation: YAML
    LOST = "lost"  # another instance claimed the fetch and never stored it: YAML


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Reject(_Strict):
    message: str = Field(min_length=1, max_length=500)


class ContextAnswer(_Strict):
    """The context webhook's JSON answer."""

    variables: dict[VarName, VarValue] = Field(default_factory=dict, max_length=100)
    instructions: str | None = Field(default=None, min_length=1, max_length=20_000)
    greeting: str | None = Field(default=None, min_length=1, max_length=1_000)
    agent: AgentOverrides = AgentOverrides()
    turn_taking: TurnTakingSettings | None = None
    reject: Reject | None = None


class CallContext(_Strict):
    """A call's settled context, as kept in the shared call store."""

    status: ContextStatus
    answer: ContextAnswer | None = None

    def dump(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


def parse_answer(body: bytes) -> ContextAnswer:
    """The webhook's answer; ValueError (with the first error's path, never the values) if it
    is not JSON or fails validation."""
    if len(body) > MAX_ANSWER_BYTES:
        raise ValueError(f"answer over {MAX_ANSWER_BYTES} bytes")
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError("answer is not JSON") from exc
    if not isinstance(data, dict):
        raise ValueError("answer is not a JSON object")
    try:
        return ContextAnswer.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        raise ValueError(f"{where}: {err['type']}") from exc


def load_context(data: bytes | None) -> CallContext | None:
    """The stored context (None if absent or unreadable: written by another version)."""
    if data is None:
        return None
    try:
        return CallContext.model_validate_json(data)
    except ValidationError:
        return None


def render(template: str, variables: dict[str, str]) -> str:
    """`template` with each `{{name}}` replaced by its variable (unknown names: empty)."""
    return PLACEHOLDER.sub(lambda m: variables.get(m.group(1), ""), template)


def placeholders(template: str) -> set[str]:
    return {m.group(1) for m in PLACEHOLDER.finditer(template)}


def apply_context(plan: CallPlan, context: CallContext | None) -> CallPlan:
    """The plan the call runs with: the answer's agent changes on top of the YAML's, then the
    placeholders of instructions and greeting filled from the call's own variables (an
    outbound call's) and the answer's, which win (also without a context: unknown ones empty)."""
    answer = context.answer if context is not None else None
    if context is not None:
        plan = plan.model_copy(update={"context": context_summary(context)})
    if answer is not None and answer.turn_taking is not None:
        plan = with_turn_taking(plan, answer.turn_taking)
    agent = plan.agent
    variables: dict[str, str] = dict(plan.variables)
    rejected = None
    if answer is not None:
        changes = {k: v for k, v in answer.agent if v is not None}
        if answer.instructions is not None:
            changes["instructions"] = answer.instructions
        if answer.greeting is not None:
            changes["greeting"] = answer.greeting
        agent = agent.model_copy(update=changes)
        variables |= dict(answer.variables)
        rejected = answer.reject.message if answer.reject is not None else None
    templated = any(PLACEHOLDER.search(getattr(agent, f)) for f in TEMPLATED)
    voicemail = plan.voicemail  # an outbound call's voicemail leg
    templated = templated or bool(voicemail and PLACEHOLDER.search(voicemail))
    if not templated and not variables and rejected is None and agent is plan.agent:
        return plan
    agent = agent.model_copy(update={f: render(getattr(agent, f), variables) for f in TEMPLATED})
    voicemail = render(voicemail, variables) if voicemail is not None else None
    return plan.model_copy(update={"agent": agent, "variables": variables, "rejected": rejected,
                                   "voicemail": voicemail})  # fmt: skip


def with_turn_taking(plan: CallPlan, settings: TurnTakingSettings) -> CallPlan:
    """The plan with the context's turn taking: the eagerness of the number's turn detection
    (the call's `session.update`), the relay settings (the call's TwiML)."""
    agent = plan.agent
    if settings.eagerness is not None:
        detection = agent.turn_detection.model_copy(update={"eagerness": settings.eagerness})
        agent = agent.model_copy(update={"turn_detection": detection})
    relay = plan.relay.model_copy(update=settings.relay_changes())
    return plan.model_copy(update={"agent": agent, "relay": relay})


def context_summary(context: CallContext) -> str:
    """How the context settled and what its answer set, for the call's record: names only,
    never values (`applied: variables first_name, open_order; greeting; turn_taking`)."""
    answer = context.answer
    if answer is None:
        return context.status.value
    parts = []
    if answer.variables:
        parts.append("variables " + ", ".join(sorted(answer.variables)))
    parts += [name for name in ("instructions", "greeting") if getattr(answer, name) is not None]
    changed = sorted(k for k, v in answer.agent if v is not None)
    if changed:
        parts.append("agent " + ", ".join(changed))
    if answer.turn_taking is not None:
        parts.append("turn_taking")
    text = f"{context.status.value}: {'; '.join(parts)}" if parts else context.status.value
    return text[:300]
