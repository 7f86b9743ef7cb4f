"""Per-number configuration: YAML → frozen, validated pydantic models → one CallPlan per call.

The file has `defaults` (agent + mode knobs), `unknown_numbers` (what a call to a number not in
the file gets) and `numbers` (E.164 → mode or experiment, plus overrides). Secrets never live
here; `load_config` rejects unknown keys and bad values with the YAML path of the error.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from voiceagent.errors import ConfigError
from voiceagent.tools.spec import ToolSpec, check_dtmf_template, check_tool_list

ModeName = Literal["realtime-passthrough", "relay-router"]
Interruptible = Literal["none", "dtmf", "speech", "any"]
_K = TypeVar("_K", bound=BaseModel)
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
DtmfTemplate = Annotated[str, AfterValidator(check_dtmf_template)]
Tools = Annotated[tuple[ToolSpec, ...], AfterValidator(check_tool_list)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TurnDetection(_Model):
    """Inworld turn detection; `type: none` means manual turns (no VAD events)."""

    type: Literal["semantic_vad", "server_vad", "none"] = "semantic_vad"
    eagerness: Literal["low", "medium", "high", "auto"] = "auto"


class AgentConfig(_Model):
    """What the agent is: prompt, greeting, models and voice. Shared by both modes."""

    instructions: str = "You are a friendly, concise phone assistant. Keep answers short."
    greeting: str = "Hello! How can I help you today?"
    llm_model: str = "openai/gpt-4.1-mini"
    voice: str = "Clive"
    tts_model: str = "inworld-tts-2"
    transcription_model: str = "inworld/inworld-stt-1"
    turn_detection: TurnDetection = TurnDetection()
    temperature: float = Field(default=0.8, ge=0, le=2)
    apology: str = "Sorry, something went wrong on our side. Please call again later."
    failover_greeting: str = "Sorry about that, I'm back. Where were we?"
    tools: Tools = ()  # see voiceagent/tools/spec.py


class AgentOverrides(_Model):
    """Per-number or per-arm changes to the default agent; unset fields keep the default
    (a `tools` list replaces the inherited one; `tools: []` means none)."""

    instructions: str | None = None
    greeting: str | None = None
    llm_model: str | None = None
    voice: str | None = None
    tts_model: str | None = None
    transcription_model: str | None = None
    turn_detection: TurnDetection | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    apology: str | None = None
    failover_greeting: str | None = None
    tools: Tools | None = None


class RealtimeKnobs(_Model):
    """realtime-passthrough specifics."""

    append_ms: int = Field(default=40, ge=20, le=1000, description="caller audio per append")
    mark_ms: int = Field(
        default=200, ge=20, le=2000, description="agent audio per mark: truncation accuracy"
    )
    greet_first: bool = True
    dtmf_template: DtmfTemplate = "The caller pressed the key {digit}."


class Handoff(_Model):
    """What `/voice/action` does with a ConversationRelay `end` carrying handoff data."""

    type: Literal["hangup", "dial"] = "hangup"
    number: str | None = None
    message: str = "Please hold while I transfer you."

    @model_validator(mode="after")
    def _dial_needs_number(self) -> Handoff:
        if self.type == "dial" and not (self.number and E164.match(self.number)):
            raise ValueError("handoff type 'dial' needs an E.164 'number'")
        return self


class RelayKnobs(_Model):
    """relay-router specifics; every ConversationRelay attribute is set explicitly in TwiML."""

    language: str = "en-US"
    transcription_provider: Literal["Deepgram", "Google"] = "Deepgram"
    speech_model: str = "nova-3-general"
    interruptible: Interruptible = "any"
    interrupt_sensitivity: Literal["low", "medium", "high"] = "high"
    report_input_during_agent_speech: Interruptible = "speech"
    dtmf_detection: bool = True
    hints: tuple[str, ...] = ()
    voice_source: Literal["inworld", "twilio"] = "inworld"
    greeting_source: Literal["inworld", "twilio"] = "inworld"
    tts_provider: Literal["ElevenLabs", "Google", "Amazon"] = "Google"
    twilio_voice: str = "en-US-Journey-O"
    dtmf_template: DtmfTemplate = "The caller pressed the key {digit}."
    clip_format: Literal["ulaw_wav", "pcm_wav"] = "ulaw_wav"
    handoff: Handoff = Handoff()


class Arm(_Model):
    """One arm of an experiment: a mode, a weight and optional overrides of the number's
    settings (agent fields, and the knobs of the arm's own mode: `realtime` or `relay`)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    mode: ModeName
    weight: float = Field(gt=0)
    agent: AgentOverrides = AgentOverrides()
    realtime: RealtimeKnobs | None = None
    relay: RelayKnobs | None = None

    @field_validator("realtime", "relay")
    @classmethod
    def _knobs_of_its_mode(cls, knobs: BaseModel | None, info: ValidationInfo) -> BaseModel | None:
        wanted = {"realtime": "realtime-passthrough", "relay": "relay-router"}[str(info.field_name)]
        mode = info.data.get("mode")
        if knobs is not None and mode is not None and mode != wanted:
            raise ValueError(f"'{info.field_name}' applies to {wanted} arms only, not {mode}")
        return knobs


class Experiment(_Model):
    """Splits a number's calls between arms, deterministically per CallSid."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,60}$")
    arms: tuple[Arm, ...] = Field(min_length=2)

    @field_validator("arms")
    @classmethod
    def _unique_names(cls, arms: tuple[Arm, ...]) -> tuple[Arm, ...]:
        names = [a.name for a in arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names must be unique, got {names}")
        return arms


class Overflow(_Model):
    """What `/voice` does with a realtime call when the shared Inworld Realtime session
    budget is used up: `fallback_mode` (the number's fallback mode takes the call at once;
    without one, as `twilio_fallback`), `busy` (say `message`, hang up) or `twilio_fallback`
    (HTTP 503: Twilio uses the number's fallback URL)."""

    policy: Literal["fallback_mode", "busy", "twilio_fallback"] = "fallback_mode"
    message: str = "All our agents are busy right now. Please call again in a few minutes."


class NumberConfig(_Model):
    """One phone number: either a fixed `mode` or an `experiment`, plus overrides."""

    mode: ModeName | None = None
    experiment: Experiment | None = None
    agent: AgentOverrides = AgentOverrides()
    realtime: RealtimeKnobs | None = None
    relay: RelayKnobs | None = None
    fallback_mode: ModeName | None = None
    overflow: Overflow = Overflow()
    record_transcripts: bool | None = None

    @model_validator(mode="after")
    def _mode_or_experiment(self) -> NumberConfig:
        if (self.mode is None) == (self.experiment is None):
            raise ValueError("set exactly one of 'mode' or 'experiment'")
        return self


class Defaults(_Model):
    agent: AgentConfig = AgentConfig()
    realtime: RealtimeKnobs = RealtimeKnobs()
    relay: RelayKnobs = RelayKnobs()
    record_transcripts: bool = False


class UnknownNumbers(_Model):
    """Policy for calls to numbers missing from `numbers`."""

    policy: Literal["refuse", "default_agent"] = "refuse"
    message: str = "Sorry, this number is not in service. Goodbye."
    mode: ModeName = "realtime-passthrough"


class Config(_Model):
    """The whole per-number configuration file."""

    defaults: Defaults = Defaults()
    unknown_numbers: UnknownNumbers = UnknownNumbers()
    numbers: dict[str, NumberConfig] = {}

    @field_validator("numbers")
    @classmethod
    def _e164_keys(cls, numbers: dict[str, NumberConfig]) -> dict[str, NumberConfig]:
        for key in numbers:
            if not E164.match(key):
                raise ValueError(f"{key!r} is not an E.164 number like +18005550100")
        return numbers

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
        )


class CallPlan(_Model):
    """Everything one call needs, resolved at `/voice` and fixed for the call's life."""

    number: str
    mode: ModeName
    arm: str | None = None
    experiment: str | None = None
    agent: AgentConfig
    realtime: RealtimeKnobs
    relay: RelayKnobs
    fallback_mode: ModeName | None = None
    overflow: Overflow = Overflow()
    record_transcripts: bool = False


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
    data: Any, source: str = "<config>", environ: Mapping[str, str] | None = None
) -> Config:
    """Validate already-loaded YAML data; ConfigError names the YAML path of the first error.

    `environ` is where tool header variables must be set (default: `.env` + process env)."""
    if data is None:
        data = {}
    try:
        return Config.model_validate(data, context={"environ": environ})
    except ValidationError as exc:
        err = exc.errors()[0]
        skip = ("function-after", "tag:")  # validator and union-tag parts are not YAML keys
        path = ".".join(str(p) for p in err["loc"] if not str(p).startswith(skip))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        raise ConfigError(f"{msg} (in {source})", path=path or "<root>") from exc


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a YAML file; ConfigError for a missing file, bad YAML or bad values."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror}", path=str(path)) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", path=str(path)) from exc
    return parse_config(data, source=str(path), environ=environ)
