"""Checks that need a number's resolved settings (defaults, number, arm merged), each naming
the YAML path of the setting to fix: a `<Failover>` TTS backup only when ConversationRelay
speaks (`voice_source: twilio`), a backup that differs from the primary provider, a TTS backup
with a language the number declares."""

from __future__ import annotations

from typing import Any

from voiceagent.config_models import NumberConfig, RelayKnobs
from voiceagent.errors import ConfigError


def check_resolved(config: Any, source: str) -> None:
    """Raise ConfigError (with the YAML path) for the first resolved setting that cannot work."""
    defaults = config.defaults.relay
    for number, entry in config.numbers.items():
        for where, relay in _relay_variants(number, entry, defaults):
            problem = _failover_problem(relay)
            if problem is not None:
                raise ConfigError(f"{problem} (in {source})", path=f"{where}.failover")


def _relay_variants(
    number: str, entry: NumberConfig, defaults: RelayKnobs
) -> list[tuple[str, RelayKnobs]]:
    """(YAML path of the section that set `failover`, resolved relay knobs) per arm or number."""
    base = _merge(defaults, entry.relay)
    base_where = _where(number, entry.relay, "defaults.relay", f"numbers.{number}.relay")
    if entry.experiment is None:
        return [(base_where, base)] if entry.mode == "relay-router" else []
    variants = []
    for index, arm in enumerate(entry.experiment.arms):
        if arm.mode != "relay-router":
            continue
        here = f"numbers.{number}.experiment.arms.{index}.relay"
        variants.append((_where(number, arm.relay, base_where, here), _merge(base, arm.relay)))
    return variants


def _where(number: str, knobs: RelayKnobs | None, inherited: str, own: str) -> str:
    return own if knobs is not None and "failover" in knobs.model_fields_set else inherited


def _merge(base: RelayKnobs, override: RelayKnobs | None) -> RelayKnobs:
    if override is None:
        return base
    return base.model_copy(update={k: getattr(override, k) for k in override.model_fields_set})


def _failover_problem(relay: RelayKnobs) -> str | None:
    for backup in relay.failover:
        if backup.tts_provider is not None and relay.voice_source != "twilio":
            return "a TTS backup needs voice_source: twilio (ConversationRelay does not speak)"
        if backup.code == relay.language:
            if backup.tts_provider is not None and backup.tts_provider == relay.tts_provider:
                return f"the TTS backup for {backup.code} is the primary provider"
            if backup.transcription_provider == relay.transcription_provider and (
                backup.speech_model in (None, relay.speech_model)
            ):
                return f"the STT backup for {backup.code} is the primary provider and model"
    return None
