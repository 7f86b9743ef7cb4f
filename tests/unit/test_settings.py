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
