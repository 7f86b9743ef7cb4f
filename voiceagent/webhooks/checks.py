"""What `check-config` says about a config's webhooks: placeholders that will always render
empty (warnings), and settings the webhooks cannot start without (errors)."""

from __future__ import annotations

from voiceagent.config import Config
from voiceagent.errors import ConfigError
from voiceagent.settings import Settings
from voiceagent.webhooks.context import TEMPLATED, placeholders

_SAMPLE_SID = "CA" + "0" * 32


def placeholder_warnings(config: Config) -> list[str]:
    """Numbers whose instructions or greeting use `{{name}}` placeholders no call-context
    webhook can fill (they render empty)."""
    warnings = []
    for number in sorted(config.numbers):
        plan = config.plan_for(number, _SAMPLE_SID)
        if plan is None or plan.webhooks.call_context is not None:
            continue
        for field in TEMPLATED:
            names = placeholders(getattr(plan.agent, field))
            if names:
                shown = ", ".join("{{" + n + "}}" for n in sorted(names))
                warnings.append(
                    f"numbers.{number}.agent.{field}: {shown} render empty: the number has no "
                    "webhooks.call_context to fill them"
                )
    return warnings


def recording_warnings(settings: Settings, config: Config) -> list[str]:
    """Numbers that want recordings while no Twilio REST account is configured."""
    if settings.twilio_account_sid:
        return []
    return [
        f"numbers.{number}.recording: enabled, but TWILIO_ACCOUNT_SID is not set: calls are "
        "not recorded"
        for number, entry in sorted(config.numbers.items())
        if entry.recording is not None and entry.recording.enabled
    ]


def webhook_settings_error(settings: Settings, config: Config) -> str | None:
    """Why the server would refuse to start this config's webhooks (None: it would not)."""
    try:
        settings.require_webhook_secret(
            config.uses_webhooks(), config.uses_webhooks(events_only=True)
        )
    except ConfigError as exc:
        return str(exc)
    return None
