"""Unit tests of environment settings."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from voiceagent.errors import ConfigError
from voiceagent.settings import ENV_NAMES, Settings
from voiceagent.settings import load_settings as load_from_environment

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def load_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Settings]:
    """`load_settings` on exactly the given environment (every setting variable cleared first)."""

    def load(environ: Mapping[str, str], env_file: Path | None = None) -> Settings:
        for env in ENV_NAMES:
            monkeypatch.delenv(env, raising=False)
        for key, value in environ.items():
            monkeypatch.setenv(key, value)
        return load_from_environment(env_file=env_file)

    return load


def test_defaults_are_secure_and_documented_urls(load_settings: Callable[..., Settings]) -> None:
    """With no environment, signatures are checked and the Inworld URLs are the public ones."""
    s = load_settings({}, env_file=None)
    assert s.insecure_skip_signature is False
    assert s.inworld_realtime_url == "wss://api.inworld.ai/api/v1/realtime/session"
    assert s.inworld_router_url == "https://api.inworld.ai/v1/chat/completions"


def test_env_file_is_overlaid_by_environment(
    load_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """`.env` values apply, and the process environment wins over them."""
    env = tmp_path / ".env"
    env.write_text("PUBLIC_URL=https://a.example.com/\nPORT=9000\nLOG_FORMAT=CONSOLE\n")
    s = load_settings({"PORT": "9100"}, env_file=env)
    assert s.public_url == "https://a.example.com"
    assert s.public_wss_url == "wss://a.example.com"
    assert s.port == 9100 and s.log_format == "console"


def test_bad_setting_names_the_variable(load_settings: Callable[..., Settings]) -> None:
    """An invalid value fails with the environment variable's name."""
    with pytest.raises(ConfigError) as err:
        load_settings({"PORT": "eighty"}, env_file=None)
    assert err.value.path == "PORT"
    with pytest.raises(ConfigError) as err2:
        load_settings({"PUBLIC_URL": "voice.example.com"}, env_file=None)
    assert err2.value.path == "PUBLIC_URL"


def test_serving_without_auth_token_is_refused_naming_both_settings(
    load_settings: Callable[..., Settings],
) -> None:
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


def test_load_cap_and_metrics_listener_settings(load_settings: Callable[..., Settings]) -> None:
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


def test_every_setting_is_documented_in_env_example(load_settings: Callable[..., Settings]) -> None:
    """`.env.example` names every variable Settings reads (and nothing else but tool secrets)."""
    example = ROOT / ".env.example"
    # a setting, or one shown commented out with its default (`# NAME=value`)
    names = set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]+)=", example.read_text(), re.M))
    assert set(ENV_NAMES) <= names, sorted(set(ENV_NAMES) - names)
    assert names - set(ENV_NAMES) == {"ORDERS_API_TOKEN"}
    load_settings({}, env_file=example)  # and the example itself is valid


def test_errors_name_every_variable_and_the_expected_form(
    load_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """All invalid variables are reported at once, each with the form it expects."""
    env = tmp_path / ".env"
    env.write_text("METRICS_PORT=-1\nORDERS_API_TOKEN=x\n")
    with pytest.raises(ConfigError) as err:
        load_settings({"PORT": "eighty", "VOICEAGENT_INSECURE_SKIP_SIGNATURE": "maybe"}, env)
    text = str(err.value)
    assert err.value.path == "PORT"
    assert "(got 'eighty'); expected an integer from 0 to 65535" in text
    assert "VOICEAGENT_INSECURE_SKIP_SIGNATURE:" in text and "expected true or false" in text
    assert "METRICS_PORT:" in text and "(or empty for none)" in text
    with pytest.raises(ConfigError) as secret:
        load_settings({"PORT": "8080", "OVERLOAD_MESSAGE": "x" * 501, "ADMIN_TOKEN": "t"})
    assert "OVERLOAD_MESSAGE" in str(secret.value) and "at most 500 characters" in str(secret.value)


def test_settings_built_in_code_read_no_environment(
    load_settings: Callable[..., Settings],
) -> None:
    """`Settings(...)` holds only what it is given, whatever the environment says."""
    assert load_settings({"PORT": "9999", "VOICEAGENT_CONFIG": "elsewhere.yaml"}).port == 9999
    assert Settings(max_frame_bytes=4096).port == 8080
    assert str(Settings().config_path) == "config/voiceagent.yaml"
    assert str(Settings(config_path=Path("a.yaml")).config_path) == "a.yaml"
