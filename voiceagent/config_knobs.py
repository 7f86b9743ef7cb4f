"""The 2026 per-number knobs: ConversationRelay failover and turn taking, Inworld Realtime
back-channel, fillers and reconnects, the languages `set_language` may switch to and the
turn-taking presets `set_turn_taking` may switch to.

Frozen and strict like every config model (`config_models.py` uses them); what each one means
on the wire, and how sure that is, is in docs/protocol-updates-2026.md and docs/knobs.md.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from voiceagent.config_filler import check_filler

RelayTtsProvider = Literal["ElevenLabs", "Google", "Amazon"]
RelaySttProvider = Literal["Deepgram", "Google"]
LanguageCode = Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
FillerFile = Annotated[str | None, AfterValidator(check_filler)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FailoverLanguage(_Model):
    """Backup providers for one language of a ConversationRelay call (`<Failover>`): unset
    fields leave Twilio's default backup for that language."""

    code: str = LanguageCode
    tts_provider: RelayTtsProvider | None = None
    voice: str | None = Field(default=None, min_length=1, max_length=100)
    transcription_provider: RelaySttProvider | None = None
    speech_model: str | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _something(self) -> FailoverLanguage:
        if self.voice is not None and self.tts_provider is None:
            raise ValueError("a backup 'voice' needs its 'tts_provider'")
        if self.speech_model is not None and self.transcription_provider is None:
            raise ValueError("a backup 'speech_model' needs its 'transcription_provider'")
        if self.tts_provider is None and self.transcription_provider is None:
            raise ValueError("name a backup 'tts_provider' or 'transcription_provider'")
        return self


class Backchannel(_Model):
    """Inworld back-channel ("uh-huh" while the caller speaks): `providerData.backchannel`."""

    enabled: bool = True
    min_speech_ms: int = Field(default=800, ge=0, le=10_000)
    min_gap_ms: int = Field(default=4000, ge=0, le=60_000)
    max_per_turn: int = Field(default=3, ge=0, le=20)
    volume_gain: float = Field(default=0.6, ge=0, le=2)


class Responsiveness(_Model):
    """Inworld fillers ("let me think") when the model is slow to start its reply:
    `providerData.responsiveness`."""

    enabled: bool = True
    initial_wait_timeout_ms: int = Field(default=1200, ge=100, le=10_000)
    hard_deadline_ms: int = Field(default=2000, ge=100, le=20_000)
    min_filler_gap_ms: int = Field(default=8000, ge=0, le=120_000)
    max_initial_per_turn: int = Field(default=1, ge=0, le=5)
    enable_filler_on_first_assistant_reply: bool = False


class UpstreamReconnect(_Model):
    """How a realtime call replaces a dropped Inworld Realtime session before failing over:
    `attempts` new sessions, the first at once, then `backoff_ms` apart, doubling (at most a
    second), all within `within_ms`. `filler`: a WAV clip (config_filler.py) the caller hears
    when the new session has not started answering `filler_after_ms` after the drop."""

    attempts: int = Field(default=3, ge=0, le=10)
    backoff_ms: int = Field(default=100, ge=0, le=5000)
    within_ms: int = Field(default=4000, ge=100, le=30_000)
    filler: FillerFile = Field(default=None, min_length=1, max_length=1000)
    filler_after_ms: int = Field(default=500, ge=0, le=10_000)


class LanguageChoice(_Model):
    """One language the agent may switch to with `set_language`, with its voices and STT."""

    code: str = LanguageCode
    name: str = Field(default="", max_length=40, description="what the model calls it")
    voice: str | None = Field(default=None, min_length=1, max_length=100)  # Inworld voice
    twilio_voice: str | None = Field(default=None, min_length=1, max_length=100)
    tts_provider: RelayTtsProvider | None = None
    transcription_provider: RelaySttProvider | None = None
    speech_model: str | None = Field(default=None, min_length=1, max_length=100)
    stt_language_hints: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.name or self.code


def _unique(keys: list[str], what: str, most: int) -> None:
    """At most `most` entries, each key once (a built-in tool's enum)."""
    if len(set(keys)) != len(keys):
        raise ValueError(f"{what} must be unique, got {keys}")
    if len(keys) > most:
        raise ValueError(f"at most {most} {what}")


def check_languages(languages: tuple[LanguageChoice, ...]) -> tuple[LanguageChoice, ...]:
    """At most 10 languages, each code once."""
    _unique([language.code for language in languages], "language codes", 10)
    return languages


class TurnTakingSettings(_Model):
    """How the agent takes turns: the realtime side (Inworld semantic VAD eagerness) and the
    relay side (the ConversationRelay settings its mid-call `config` message may change).
    Unset fields stay as they are."""

    # realtime-passthrough
    eagerness: Literal["low", "medium", "high", "auto"] | None = None
    # relay-router
    interruptible: Literal["none", "dtmf", "speech", "any"] | None = None
    interrupt_sensitivity: Literal["low", "medium", "high"] | None = None
    speech_timeout_ms: int | None = Field(default=None, ge=100, le=60_000)
    eot_threshold: float | None = Field(default=None, ge=0, le=1)
    ignore_backchannel: bool | None = None
    echo_prompt_filtering: bool | None = None
    preemptible: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> TurnTakingSettings:
        if not any(getattr(self, k) is not None for k in ("eagerness", *RELAY_TURN_TAKING)):
            raise ValueError("set at least one turn-taking setting")
        return self

    def relay_changes(self) -> dict[str, object]:
        """The relay side's settings this sets (snake_case, as `RelayKnobs` names them)."""
        return {k: getattr(self, k) for k in RELAY_TURN_TAKING if getattr(self, k) is not None}


class TurnTakingPreset(TurnTakingSettings):
    """One way of taking turns the agent may switch to mid-call with `set_turn_taking`: a
    partial `session.update` of the eagerness (realtime), a `config` message (relay)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    description: str = Field(default="", max_length=200, description="when to use it")


RELAY_TURN_TAKING = (
    "interruptible", "interrupt_sensitivity", "speech_timeout_ms", "eot_threshold",
    "ignore_backchannel", "echo_prompt_filtering", "preemptible",
)  # fmt: skip
"""The preset fields ConversationRelay's mid-call `config` message carries."""


def check_turn_taking(presets: tuple[TurnTakingPreset, ...]) -> tuple[TurnTakingPreset, ...]:
    """At most 6 presets, each name once."""
    _unique([preset.name for preset in presets], "turn-taking preset names", 6)
    return presets
