"""What `voiceagent simulate` calls for a given config: every number, every arm, every tool.

Pure (no I/O): from a loaded ``Config`` and the numbers asked for (default: all configured),
``plan_rehearsal`` chooses

- the plain calls: each configured number, and each arm of an experiment twice as often (so
  the arms gather turns for a verdict), in turn until ``calls`` are placed; a call to an arm
  gets a CallSid that the arm's deterministic split sends there;
- the tool scenarios: for every number (or arm) whose agent has tools, a caller who asks for
  each HTTP tool, one transfer per destination, and one caller the agent says goodbye to. The
  fake models call the tool on the scenario's words (``ScriptedToolCall``);
- the warnings: everything in the config the rehearsal cannot play (a mode the simulated
  Twilio does not speak, a failover the fakes never cause, an arm no CallSid reaches, ...).

Whether an HTTP tool can be called at all (reachable, safe to call) is checked by the
rehearsal, which drops the scenario with a warning (``drop_http_tool``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from voiceagent.config import Config
from voiceagent.config_models import E164, CallPlan
from voiceagent.modes.registry import ModeRegistry, PhoneProtocol
from voiceagent.sim.fake_tool_calls import ScriptedToolCall
from voiceagent.tools.spec import EndCallSpec, HttpToolSpec, TransferCallSpec

SIMULATED_PROTOCOLS: frozenset[PhoneProtocol] = frozenset({"media-streams", "conversation-relay"})
"""The phone protocols the simulated Twilio speaks (`sim/caller.py`)."""
TOOL_SERVER = "http://tools.rehearsal.invalid"
"""An HTTP tool URL under this base is served by the rehearsal's own ToolServer."""
TOOL_SERVER_ANSWERS = {
    "/weather": "It's {data[forecast]} and {data[temperature_c]} degrees in {data[city]}.",
}
"""How the fake words the answer of the tool server's own endpoints (else it reads the JSON)."""
MAX_SID_TRIES = 10_000


@dataclass(frozen=True, slots=True)
class Scenario:
    """One tool scenario: what the caller says, and the call the fake model makes on it."""

    name: str
    said: str
    script: ScriptedToolCall
    http: HttpToolSpec | None = None  # the HTTP tool it calls, if any


@dataclass(frozen=True, slots=True)
class Target:
    """A number, or one arm of a number's experiment, with the plan its calls get."""

    number: str
    arm: str | None
    plan: CallPlan

    @property
    def label(self) -> str:
        return self.number if self.arm is None else f"{self.number} arm {self.arm}"


@dataclass
class RehearsalPlan:
    """The calls to place (number, CallSid), the tool scenarios, and what is not rehearsed."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    scenarios: list[tuple[str, str, Scenario]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def scripts(self) -> tuple[ScriptedToolCall, ...]:
        """Every scenario's scripted call, once (the fakes match them on the caller's words)."""
        unique = {(s.script.phrase, s.script.name): s.script for _, _, s in self.scenarios}
        return tuple(unique.values())

    def keep_playable(self, config: Config, modes: ModeRegistry) -> None:
        """Leave out (with one warning each) the numbers and arms whose mode's phone protocol
        the simulated Twilio does not speak."""
        unplayable: dict[str, str] = {}

        def playable(number: str, sid: str) -> bool:
            plan = config.plan_for(number, sid)
            mode = modes.get(plan.mode if plan else None)
            if mode is not None and mode.phone_protocol in SIMULATED_PROTOCOLS:
                return True
            assert plan is not None
            label = number if plan.arm is None else f"{number} arm {plan.arm}"
            unplayable[label] = plan.mode
            return False

        self.calls = [c for c in self.calls if playable(*c)]
        self.scenarios = [c for c in self.scenarios if playable(c[0], c[1])]
        for label, mode in unplayable.items():
            self.warnings.append(f"{label}: the simulated Twilio cannot play {mode}; not called")

    def drop_http_tool(self, tool: HttpToolSpec, why: str) -> None:
        """Leave out every scenario calling ``tool`` (same name and URL), saying why."""
        kept = [c for c in self.scenarios if not _same_tool(c[2].http, tool)]
        if len(kept) != len(self.scenarios):
            self.scenarios = kept
            self.warnings.append(f"tool {tool.name} ({tool.method} {tool.url}): {why}; not called")


def _same_tool(a: HttpToolSpec | None, b: HttpToolSpec) -> bool:
    return a is not None and (a.name, a.url, a.method) == (b.name, b.url, b.method)


def plan_rehearsal(
    config: Config, numbers: list[str] | None, calls: int, tools: bool, rng: random.Random
) -> RehearsalPlan:
    """The rehearsal of ``numbers`` (every configured number when None); ValueError names a
    number that is not E.164 or that the config would refuse."""
    plan = RehearsalPlan()
    targets = _targets(config, numbers or sorted(config.numbers), rng, plan.warnings)
    fallbacks: set[str] = set()
    for t in targets:
        if t.plan.fallback_mode is not None and t.number not in fallbacks:
            fallbacks.add(t.number)
            plan.warnings.append(
                f"{t.number}: fallback_mode {t.plan.fallback_mode} is not rehearsed "
                "(the fake Inworld never refuses or drops a session)"
            )
    weighted = targets + [t for t in targets if t.arm is not None]  # arms twice as often
    if targets and 0 < calls < len(targets):
        plan.warnings.append(
            f"--calls {calls} is fewer than the {len(targets)} calls it takes to reach every "
            "number and arm: placing those"
        )
    for i in range(max(calls, len(targets)) if targets and calls else 0):
        target = weighted[i % len(weighted)]
        sid = _sid_for(config, target, rng)
        if sid is not None:
            plan.calls.append((target.number, sid))
    for target in targets if tools else []:
        for scenario in tool_scenarios(target.plan):
            sid = _sid_for(config, target, rng)
            if sid is not None:
                plan.scenarios.append((target.number, sid, scenario))
    return plan


def capacity_warning(
    config: Config, plan: RehearsalPlan, concurrency: int, budget: int, modes: ModeRegistry
) -> str | None:
    """A warning when more calls holding an Inworld Realtime session may run at once than
    REALTIME_SESSION_BUDGET allows: the ordinary calls run ``concurrency`` at a time, then every
    tool scenario at once."""
    holding = set(modes.holding_realtime_sessions())

    def realtime(calls: list[tuple[str, str]]) -> int:
        plans = (config.plan_for(number, sid) for number, sid in calls)
        return sum(1 for p in plans if p is not None and p.mode in holding)

    at_once = max(min(concurrency, realtime(plan.calls)),
                  realtime([(n, sid) for n, sid, _ in plan.scenarios]))  # fmt: skip
    if at_once <= budget:
        return None
    return (
        f"up to {at_once} realtime calls at once, over REALTIME_SESSION_BUDGET={budget}: the "
        "calls past it get their number's overflow policy, as in production (by default a "
        "503, shown as refused, unless the number has a fallback_mode); lower --concurrency "
        "to rehearse without it"
    )


def _targets(
    config: Config, numbers: list[str], rng: random.Random, warnings: list[str]
) -> list[Target]:
    out: list[Target] = []
    for number in numbers:
        if not E164.match(number):
            raise ValueError(f"{number}: not an E.164 number (+ then up to 15 digits)")
        entry = config.numbers.get(number)
        if entry is None and config.unknown_numbers.policy == "refuse":
            raise ValueError(f"{number}: not in the config's numbers (unknown numbers: refuse)")
        if entry is None or entry.experiment is None:
            plan = config.plan_for(number, _sid(rng))
            assert plan is not None
            out.append(Target(number, None, plan))
            continue
        for arm in entry.experiment.arms:
            sid = _find_sid(config, number, arm.name, rng)
            if sid is None:
                warnings.append(f"{number} arm {arm.name}: no CallSid reaches it (weight too low)")
                continue
            plan = config.plan_for(number, sid)
            assert plan is not None
            out.append(Target(number, arm.name, plan))
    return out


def _sid(rng: random.Random) -> str:
    return "CA" + rng.randbytes(16).hex()


def _find_sid(config: Config, number: str, arm: str, rng: random.Random) -> str | None:
    for _ in range(MAX_SID_TRIES):
        sid = _sid(rng)
        plan = config.plan_for(number, sid)
        if plan is not None and plan.arm == arm:
            return sid
    return None


def _sid_for(config: Config, target: Target, rng: random.Random) -> str | None:
    if target.arm is None:
        return _sid(rng)
    return _find_sid(config, target.number, target.arm, rng)


def tool_scenarios(plan: CallPlan) -> list[Scenario]:
    """One scenario per HTTP tool, per transfer destination, and one for ``end_call``."""
    out: list[Scenario] = []
    for tool in plan.agent.tools:
        if isinstance(tool, HttpToolSpec):
            said = f"Could you check {tool.name.replace('_', ' ')} for me?"
            answer = None
            if tool.url.startswith(TOOL_SERVER):
                answer = TOOL_SERVER_ANSWERS.get(tool.url[len(TOOL_SERVER) :].split("?")[0])
            script = ScriptedToolCall(
                said, tool.name, example_arguments(tool.parameters), say="Let me check.",
                answer=answer,
            )  # fmt: skip
            out.append(Scenario(f"tool {tool.name}", said, script, tool))
        elif isinstance(tool, TransferCallSpec):
            for name, dest in tool.destinations.items():
                said = f"Can I talk to a person at {name.replace('_', ' ')}, please?"
                script = ScriptedToolCall(
                    said, tool.name, {"destination": name},
                    answer=dest.announcement or "Connecting you now. One moment, please.",
                )  # fmt: skip
                out.append(Scenario(f"transfer to {name}", said, script))
        elif isinstance(tool, EndCallSpec):
            said = "That's all I needed, thanks. Bye!"
            script = ScriptedToolCall(
                said, tool.name, say="Goodbye, and thanks for calling!", answer="Take care."
            )
            out.append(Scenario("agent ends", said, script))
    return out


def example_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """Arguments for an object schema: each required property's first example, enum value,
    const or default, else a value of its type (strings "test")."""
    props = schema.get("properties") or {}
    return {
        name: example_value(props.get(name) or {})
        for name in schema.get("required") or []
        if isinstance(name, str)
    }


def example_value(schema: dict[str, Any]) -> Any:
    """One value for a property schema (see ``example_arguments``)."""
    for key in ("examples", "enum"):
        values = schema.get(key)
        if isinstance(values, list) and values:
            return values[0]
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    if kind == "object":
        return example_arguments(schema)
    return {"integer": 1, "number": 1, "boolean": True, "array": [], "null": None}.get(
        str(kind), "test"
    )
