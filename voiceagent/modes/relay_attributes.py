"""The ConversationRelay TwiML of a relay-router call, from the plan's knobs: every attribute
explicit where Twilio changed defaults, the 2026 ones only when set, `<Language>` for the
languages `set_language` may switch to and `<Failover>` backups (docs/knobs.md)."""

from __future__ import annotations

from voiceagent.config import RelayKnobs
from voiceagent.config_knobs import LanguageChoice


def relay_attributes(relay: RelayKnobs, welcome_greeting: str | None) -> dict[str, str | bool]:
    """Every ConversationRelay attribute, explicit (docs/protocols.md, Twilio §2.1): Twilio
    changed several defaults in 2025 and they depend on the account's age. The
    ConversationRelay voice is named only when it speaks (`voice_source: twilio`);
    `welcome_greeting` when Twilio greets."""
    attributes: dict[str, str | bool] = {
        "language": relay.language,
        "transcription_provider": relay.transcription_provider,
        "speech_model": relay.speech_model,
        "interruptible": relay.interruptible,
        "interrupt_sensitivity": relay.interrupt_sensitivity,
        "report_input_during_agent_speech": relay.report_input_during_agent_speech,
        "dtmf_detection": relay.dtmf_detection,
    }
    if relay.hints:
        attributes["hints"] = ",".join(relay.hints)
    if relay.voice_source == "twilio":
        attributes["tts_provider"] = relay.tts_provider
        attributes["voice"] = relay.twilio_voice
    if welcome_greeting:
        attributes["welcome_greeting"] = welcome_greeting
        attributes["welcome_greeting_interruptible"] = relay.interruptible
    attributes["application_reconnect"] = relay.application_reconnect
    optional = {
        "turn_detection": relay.turn_detection, "eot_threshold": relay.eot_threshold,
        "ignore_backchannel": relay.ignore_backchannel, "preemptible": relay.preemptible,
        "echo_prompt_filtering": relay.echo_prompt_filtering,
        "speech_timeout": relay.speech_timeout_ms,
        "events": ",".join(relay.events) or None,
    }  # fmt: skip
    for name, value in optional.items():
        if value is not None:
            attributes[name] = value if isinstance(value, bool | str) else str(value)
    return attributes


def declared_languages(languages: tuple[LanguageChoice, ...]) -> list[dict[str, str]]:
    """A `<Language>` per language `set_language` may switch to that names Twilio settings."""
    fields = ("tts_provider", "twilio_voice", "transcription_provider", "speech_model")
    out = []
    for choice in languages:
        named = {k: v for k in fields if (v := getattr(choice, k)) is not None}
        if named:
            if "twilio_voice" in named:
                named["voice"] = named.pop("twilio_voice")
            out.append({"code": choice.code, **named})
    return out


def failover_languages(relay: RelayKnobs) -> list[dict[str, str]]:
    """The `<Failover>` entries: per language the backup providers the number names."""
    return [
        {k: v for k, v in backup.model_dump(exclude_none=True).items() if isinstance(v, str)}
        for backup in relay.failover
    ]
