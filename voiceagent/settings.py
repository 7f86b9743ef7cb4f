"""Environment settings (secrets, URLs, ports). Per-number behaviour lives in YAML (config.py).

`load_settings()` reads them through pydantic-settings: the process environment, overlaid on a
`.env` file in the working directory if there is one (read by python-dotenv). Every setting is
listed, with a comment, in `.env.example`. `Settings(...)` itself is plain data: it reads no
environment, so tests and the simulator build one from exactly the values they pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from voiceagent.errors import ConfigError
from voiceagent.settings_errors import settings_error

DEFAULT_CONFIG = Path("config/voiceagent.yaml")


class Settings(BaseSettings):
    """Process-wide settings; one instance per app, never module-level state.

    The environment variable of a field is its name in capitals, except where a
    `validation_alias` names it (`VOICEAGENT_CONFIG`, `VOICEAGENT_INSECURE_SKIP_SIGNATURE`).
    """

    model_config = SettingsConfigDict(
        frozen=True, extra="forbid", env_ignore_empty=True, validate_by_name=True
    )

    public_url: str = Field(
        default="https://localhost:8080",
        description="The https base URL Twilio reaches (behind proxies: the outside URL).",
    )
    twilio_auth_token: str = ""
    inworld_api_key: str = ""
    inworld_realtime_url: str = "wss://api.inworld.ai/api/v1/realtime/session"
    inworld_router_url: str = "https://api.inworld.ai/v1/chat/completions"
    config_path: Path = Field(default=DEFAULT_CONFIG, validation_alias="VOICEAGENT_CONFIG")
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    insecure_skip_signature: bool = Field(
        default=False, validation_alias="VOICEAGENT_INSECURE_SKIP_SIGNATURE"
    )
    drain_grace_seconds: float = Field(default=30.0, ge=0)
    upstream_connect_timeout: float = Field(default=5.0, gt=0)
    router_first_byte_timeout: float = Field(default=8.0, gt=0)
    max_frame_bytes: int = Field(default=64 * 1024, ge=1024)
    phone_idle_timeout: float = Field(default=20.0, gt=0)
    upstream_idle_timeout: float = Field(default=120.0, gt=0)
    heartbeat_seconds: float = Field(default=15.0, gt=0)
    send_timeout: float = Field(default=5.0, gt=0)
    clip_ttl_seconds: float = Field(default=120.0, gt=0)
    clip_stream_unknown_length: bool = False
    redis_url: str = ""
    database_url: str = "sqlite+aiosqlite:///voiceagent.sqlite3"
    admin_token: str = ""
    max_concurrent_calls: int = Field(default=200, ge=1)
    realtime_session_budget: int = Field(default=20, ge=1)
    realtime_session_lease_seconds: float = Field(default=60.0, gt=0)
    records_buffer: int = Field(default=10_000, ge=1)
    overload_policy: Literal["fallback", "busy"] = "fallback"
    overload_message: str = Field(
        default="Sorry, all our lines are busy. Please call again later. Goodbye.",
        max_length=500,
    )
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=0, le=65535)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values passed in: `load_settings` is the one reader of the environment."""
        return (init_settings,)

    @field_validator("log_level", "log_format", "overload_policy", mode="before")
    @classmethod
    def _lower_case(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("public_url")
    @classmethod
    def _https_base(cls, value: str) -> str:
        value = value.rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (the URL Twilio reaches)")
        return value

    @property
    def public_wss_url(self) -> str:
        """The WebSocket base Twilio connects to (`https://h` becomes `wss://h`)."""
        scheme, rest = self.public_url.split("://", 1)
        return ("wss://" if scheme == "https" else "ws://") + rest

    def require_signature_key(self) -> None:
        """Refuse to serve without a Twilio auth token, unless signatures are skipped on purpose.

        With an empty key every request signed with the empty key would verify, so the server
        would be open to anyone; ConfigError names both settings.
        """
        if not self.twilio_auth_token.strip() and not self.insecure_skip_signature:
            raise ConfigError(
                "is empty, so no X-Twilio-Signature can be verified; set it to the Twilio "
                "account's auth token (or, for local development only, set "
                "VOICEAGENT_INSECURE_SKIP_SIGNATURE=true)",
                path="TWILIO_AUTH_TOKEN",
            )


def env_name(field: str) -> str:
    """The environment variable that sets `field` (`config_path` -> `VOICEAGENT_CONFIG`)."""
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else field.upper()


ENV_NAMES: dict[str, str] = {env_name(field): field for field in Settings.model_fields}
"""Every environment variable `load_settings` reads, mapped to its `Settings` field."""


def load_settings(env_file: Path | None = Path(".env")) -> Settings:
    """Settings from the environment overlaid on `env_file` (if it exists); ConfigError if invalid.

    Empty values count as unset (the default applies), as in `.env.example`. Other variables in
    `.env` (tool secrets such as ORDERS_API_TOKEN) are left to whoever reads them.
    """
    values: dict[str, Any] = {}
    if env_file is not None and env_file.is_file():
        values.update(DotEnvSettingsSource(Settings, env_file=env_file)())
    values.update(EnvSettingsSource(Settings)())
    known = set(Settings.model_fields) | set(ENV_NAMES)
    values = {key: value for key, value in values.items() if key in known}
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise settings_error(Settings, exc, env_name) from exc
