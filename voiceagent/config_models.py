"""The models of the per-number configuration: the agent and its per-mode knobs, a number's
mode or experiment (arms), the overflow and unknown-number policies, and the resolved CallPlan.

All frozen and strict (unknown keys are errors); `config.py` loads a file into them and resolves
one plan per call.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from voiceagent.config_knobs import (
    Backchannel,
    FailoverLanguage,
    LanguageChoice,
    Responsiveness,
    TurnTakingPreset,
    UpstreamReconnect,
    check_languages,
    check_turn_taking,
)
from voiceagent.e164 import E164 as E164  # re-exported: other modules import it from here
from voiceagent.e164 import e164_problem
from voiceagent.modes.registry import ModeName
from voiceagent.outbound.do_not_call import check_do_not_call
from voiceagent.tools.spec import ToolSpec, check_dtmf_template, check_tool_list

Interruptible = Literal["none", "dtmf", "speech", "any"]
DtmfTemplate = Annotated[str, AfterValidator(check_dtmf_template)]
Tools = Annotated[tuple[ToolSpec, ...], AfterValidator(check_tool_list)]
Languages = Annotated[tuple[LanguageChoice, ...], AfterValidator(check_languages)]
TurnTaking = Annotated[tuple[TurnTakingPreset, ...], AfterValidator(check_turn_taking)]
DoNotCallFile = Annotated[str | None, AfterValidator(check_do_not_call)]


def check_hook_url(url: str) -> str:
    """A webhook URL: absolute http(s) with a host."""
    if not re.match(r"^https?://[^/\s]+", url):
        raise ValueError(f"{url!r} is not an http(s) URL")
    return url


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
    languages: Languages = ()  # non-empty: the built-in `set_language` tool (docs/knobs.md)
    turn_taking: TurnTaking = ()  # non-empty: the built-in `set_turn_taking` tool


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
    languages: Languages | None = None
    turn_taking: TurnTaking | None = None


class RealtimeKnobs(_Model):
    """realtime-passthrough specifics."""

    append_ms: int = Field(default=40, ge=20, le=1000, description="caller audio per append")
    mark_ms: int = Field(
        default=200, ge=20, le=2000, description="agent audio per mark: truncation accuracy"
    )
    greet_first: bool = True
    dtmf_template: DtmfTemplate = "The caller pressed the key {digit}."
    backchannel: Backchannel | None = None  # None: not sent (Inworld's default: off)
    responsiveness: Responsiveness | None = None  # None: not sent (Inworld's default: off)
    stt_language_hints: tuple[str, ...] = ()
    upstream_reconnect: UpstreamReconnect = UpstreamReconnect()


class Handoff(_Model):
    """What `/voice/action` does with a ConversationRelay `end` carrying handoff data."""

    type: Literal["hangup", "dial"] = "hangup"
    number: str | None = None
    message: str = "Please hold while I transfer you."

    @model_validator(mode="after")
    def _dial_needs_number(self) -> Handoff:
        if self.type == "dial" and not (self.number and E164.match(self.number)):
            raise ValueError(f"handoff type 'dial' needs a 'number': {e164_problem(self.number)}")
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
    first_clip_ms: int | None = Field(default=None, ge=100, le=3000)
    """Close a reply's first clip after this much audio (at a nearby pause), so the caller
    hears it before the first sentence is synthesized; off (None) by default. See
    session/clip_split.py and docs/ab-testing.md."""
    handoff: Handoff = Handoff()
    # 2026 controls (docs/knobs.md); None: the attribute is not written (Twilio's default)
    application_reconnect: bool = True
    turn_detection: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    eot_threshold: float | None = Field(default=None, ge=0, le=1)
    ignore_backchannel: bool | None = None
    echo_prompt_filtering: bool | None = None
    preemptible: bool | None = None
    speech_timeout_ms: int | None = Field(default=None, ge=100, le=60_000)
    events: tuple[Literal["config-updated"], ...] = ()
    failover: tuple[FailoverLanguage, ...] = ()


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
        wanted = next(m for m in ModeName if m.knob_section == info.field_name)
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


class ContextHook(_Model):
    """Where the call context is fetched before the agent speaks (POST, JSON both ways)."""

    url: Annotated[str, AfterValidator(check_hook_url)]
    timeout_ms: int = Field(default=1500, ge=50, le=10_000)


class EventsHook(_Model):
    """Where call events (`call.ended`, `call.recording_ready`) are delivered (POST JSON)."""

    url: Annotated[str, AfterValidator(check_hook_url)]


class Webhooks(_Model):
    """The business's webhooks: a number's entry replaces the top-level one, key by key."""

    call_context: ContextHook | None = None
    call_events: EventsHook | None = None


class Recording(_Model):
    """Whether Twilio records the call (through its REST API) and how many channels."""

    enabled: bool = False
    channels: Literal["mono", "dual"] = "dual"


class Voicemail(_Model):
    """What an outbound call reached by an answering machine does after the beep."""

    action: Literal["leave_message", "hangup"] = "hangup"
    message: str = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _message_to_leave(self) -> Voicemail:
        if self.action == "leave_message" and not self.message.strip():
            raise ValueError("action 'leave_message' needs a 'message'")
        return self


class CallingHours(_Model):
    """The local window in which outbound calls may be placed (`from` inclusive, `to`
    exclusive; `from` after `to` spans midnight)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    timezone: str
    start: str = Field(alias="from", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(alias="to", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (IANA names like America/New_York)"
            ) from None
        return value


class OutboundConfig(_Model):
    """A number that places calls (docs/outbound.md): answering-machine detection, voicemail,
    who speaks first, calling hours, a do-not-call list and a concurrency cap."""

    amd: bool = False
    voicemail: Voicemail = Voicemail()
    first_speaker: Literal["callee", "agent"] = "callee"
    calling_hours: CallingHours | None = None
    do_not_call: DoNotCallFile = None  # a file: E.164 per line
    max_concurrent: int = Field(default=10, ge=1, le=10_000)
    ring_timeout_s: int = Field(default=30, ge=5, le=600)


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
    webhooks: Webhooks | None = None
    recording: Recording | None = None
    outbound: OutboundConfig | None = None

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
    mode: ModeName = ModeName.REALTIME_PASSTHROUGH


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
    webhooks: Webhooks = Webhooks()
    recording: Recording = Recording()
    variables: dict[str, str] = {}
    rejected: str | None = None  # the call context's `reject` message: say it, hang up
    context: str | None = None  # how the call context settled and what it set (names only)
    direction: Literal["inbound", "outbound"] = "inbound"
    voicemail: str | None = None  # an outbound call's voicemail leg: say this, then hang up
