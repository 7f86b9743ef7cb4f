"""Unit tests of environment settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from voiceagent.errors import ConfigError
from voiceagent.settings import load_settings


def test_defaults_are_secure_and_documented_urls() -> None:
    """With no environment, signatures are checked and the Inworld URLs are the public ones."""
    s = load_settings({}, env_file=None)
    assert s.insecure_skip_signature is False
    assert s.inworld_realtime_url == "wss://api.inworld.ai/api/v1/realtime/session"
    assert s.inworld_router_url == "https://api.inworld.ai/v1/chat/completions"


def test_env_file_is_overlaid_by_environment(tmp_path: Path) -> None:
    """`.env` values apply, and the process environment wins over them."""
    env = tmp_path / ".env"
    env.write_text("PUBLIC_URL=https://a.example.com/\nPORT=9000\nLOG_FORMAT=CONSOLE\n")
    s = load_settings({"PORT": "9100"}, env_file=env)
    assert s.public_url == "https://a.example.com"
    assert s.public_wss_url == "wss://a.example.com"
    assert s.port == 9100 and s.log_format == "console"


def test_bad_setting_names_the_variable() -> None:
    """An invalid value fails with the environment variable's name."""
    with pytest.raises(ConfigError) as err:
        load_settings({"PORT": "eighty"}, env_file=None)
    assert err.value.path == "PORT"
    with pytest.raises(ConfigError) as err2:
        load_settings({"PUBLIC_URL": "voice.example.com"}, env_file=None)
    assert err2.value.path == "PUBLIC_URL"


def test_serving_without_auth_token_is_refused_naming_both_settings() -> None:
    """No TWILIO_AUTH_TOKEN is a ConfigError naming it and the insecure override, unless set."""
    with pytest.raises(ConfigError) as err:
        load_settings({}, env_file=None).require_signature_key()
    assert err.value.path == "TWILIO_AUTH_TOKEN"
    assert "VOICEAGENT_INSECURE_SKIP_SIGNATURE" in str(err.value)
    with pytest.raises(ConfigError):
        load_settings({"TWILIO_AUTH_TOKEN": "  "}, env_file=None).require_signature_key()
    load_settings({"TWILIO_AUTH_TOKEN": "tok"}, env_file=None).require_signature_key()
    skip = {"VOICEAGENT_INSECURE_SKIP_SIGNATURE": "true"}
    load_settings(skip, env_file=None).require_signature_key()


def test_load_cap_and_metrics_listener_settings() -> None:
    """The load cap, overload policy and internal metrics listener come from the environment."""
    s = load_settings({}, env_file=None)
    assert (s.max_concurrent_calls, s.overload_policy, s.metrics_port) == (200, "fallback", None)
    s = load_settings(
        {"MAX_CONCURRENT_CALLS": "3", "OVERLOAD_POLICY": "BUSY", "OVERLOAD_MESSAGE": "Busy.",
         "METRICS_HOST": "10.0.0.5", "METRICS_PORT": "9100"},
        env_file=None,
    )  # fmt: skip
    assert s.max_concurrent_calls == 3 and s.overload_policy == "busy"
    assert s.overload_message == "Busy." and (s.metrics_host, s.metrics_port) == ("10.0.0.5", 9100)
    for env, value in (("MAX_CONCURRENT_CALLS", "0"), ("OVERLOAD_POLICY", "drop")):
        with pytest.raises(ConfigError) as err:
            load_settings({env: value}, env_file=None)
        assert err.value.path == env
