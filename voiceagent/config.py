"""Per-number configuration: YAML → frozen, validated pydantic models → one CallPlan per call.

The file has `defaults` (agent + mode knobs), `unknown_numbers` (what a call to a number not in
the file gets) and `numbers` (E.164 → mode or experiment, plus overrides). Secrets never live
here; `load_config` rejects unknown keys and bad values with the YAML path of the error.

Here: the whole file (`Config`), the plan of one call (`plan_for`, `assign_arm`) and loading.
The models of its parts live in config_models.py (re-exported here).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ValidationError

from voiceagent.config_checks import check_resolved
from voiceagent.config_errors import ConfigFileError, problems_from, yaml_syntax_problem
from voiceagent.config_models import (
    AgentConfig,
    AgentOverrides,
    Arm,
    CallPlan,
    Defaults,
    DoNotCallFile,
    DtmfTemplate,
    Experiment,
    Handoff,
    Interruptible,
    NumberConfig,
    Overflow,
    RealtimeKnobs,
    Recording,
    RelayKnobs,
    Tools,
    TurnDetection,
    UnknownNumbers,
    Webhooks,
    _Model,
)
from voiceagent.e164 import E164, check_e164
from voiceagent.errors import ConfigError
from voiceagent.modes.registry import ModeName

__all__ = [
    "E164",
    "AgentConfig",
    "AgentOverrides",
    "Arm",
    "CallPlan",
    "Config",
    "Defaults",
    "DtmfTemplate",
    "Experiment",
    "Handoff",
    "Interruptible",
    "ModeName",
    "NumberConfig",
    "Overflow",
    "RealtimeKnobs",
    "Recording",
    "RelayKnobs",
    "Tools",
    "TurnDetection",
    "UnknownNumbers",
    "Webhooks",
    "assign_arm",
    "load_config",
    "parse_config",
]
_K = TypeVar("_K", bound=BaseModel)


class Config(_Model):
    """The whole per-number configuration file."""

    defaults: Defaults = Defaults()
    unknown_numbers: UnknownNumbers = UnknownNumbers()
    webhooks: Webhooks = Webhooks()
    numbers: dict[Annotated[str, AfterValidator(check_e164)], NumberConfig] = {}
    do_not_call: DoNotCallFile = None  # a file of E.164 numbers no outbound call may dial

    def plan_for(self, number: str, call_sid: str) -> CallPlan | None:
        """The plan of a call to `number`; None means refuse (unknown number, refuse policy)."""
        entry = self.numbers.get(number)
        if entry is None:
            if self.unknown_numbers.policy == "refuse":
                return None
            entry = NumberConfig(mode=self.unknown_numbers.mode)
        d = self.defaults
        agent = _apply(d.agent, entry.agent)
        mode, arm, experiment = entry.mode, None, None
        realtime, relay = _merge(d.realtime, entry.realtime), _merge(d.relay, entry.relay)
        if entry.experiment is not None:
            chosen = assign_arm(entry.experiment, call_sid)
            mode, arm, experiment = chosen.mode, chosen.name, entry.experiment.name
            agent = _apply(agent, chosen.agent)
            realtime, relay = _merge(realtime, chosen.realtime), _merge(relay, chosen.relay)
        assert mode is not None
        return CallPlan(
            number=number,
            mode=mode,
            arm=arm,
            experiment=experiment,
            agent=agent,
            realtime=realtime,
            relay=relay,
            fallback_mode=entry.fallback_mode,
            overflow=entry.overflow,
            record_transcripts=(
                d.record_transcripts
                if entry.record_transcripts is None
                else entry.record_transcripts
            ),
            webhooks=_merge(self.webhooks, entry.webhooks),
            recording=entry.recording or Recording(),
        )

    def uses_webhooks(self, events_only: bool = False) -> bool:
        """Whether any call may fetch a context or emit events (then a signing secret is due;
        `events_only`: emit events, which need the records database's outbox)."""
        hooks = [self.webhooks, *(e.webhooks for e in self.numbers.values() if e.webhooks)]
        return any(
            h.call_events is not None or (h.call_context is not None and not events_only)
            for h in hooks
        )


def _apply(agent: AgentConfig, overrides: AgentOverrides) -> AgentConfig:
    return agent.model_copy(update={k: v for k, v in overrides if v is not None})


def _merge(base: _K, override: _K | None) -> _K:
    """`base` with the fields the YAML set explicitly in `override`."""
    if override is None:
        return base
    return base.model_copy(update={k: getattr(override, k) for k in override.model_fields_set})


def assign_arm(experiment: Experiment, call_sid: str) -> Arm:
    """Deterministic weighted choice: the same CallSid always lands in the same arm."""
    digest = hashlib.sha256(f"{experiment.name}:{call_sid}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * sum(a.weight for a in experiment.arms)
    for arm in experiment.arms:
        point -= arm.weight
        if point < 0:
            return arm
    return experiment.arms[-1]


def parse_config(
    data: Any,
    source: str = "<config>",
    environ: Mapping[str, str] | None = None,
    text: str | None = None,
) -> Config:
    """Validate already-loaded YAML data; ConfigFileError lists every problem with its YAML path.

    `environ` is where tool header variables must be set (default: `.env` + process env);
    `text`, the YAML the data came from, adds the file line of each problem."""
    if data is None:
        data = {}
    try:
        config = Config.model_validate(data, context={"environ": environ})
    except ValidationError as exc:
        raise ConfigFileError(problems_from(exc, text), source) from exc
    check_resolved(config, source)
    return config


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a YAML file; ConfigError for a missing file, bad YAML or bad values."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror}", path=str(path)) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigFileError([yaml_syntax_problem(exc, str(path))], str(path)) from exc
    return parse_config(data, source=str(path), environ=environ, text=text)
