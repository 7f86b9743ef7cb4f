"""Environment settings (secrets, URLs, ports). Per-number behaviour lives in YAML (config.py).

`load_settings()` reads them through pydantic-settings: the process environment, overlaid on a
`.env` file in the working directory if there is one (read by python-dotenv). Every setting is
listed, with a comment, in `.env.example`. `Settings(...)` itself is plain data: it reads no
environment, so tests and the simulator build one from exactly the values they pass.
"""

from __future__ import annotations

from collections.abc import Mapping
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


MIN_ADMIN_TOKEN_CHARS = 32
"""An ADMIN_TOKEN shorter than this is refused at start (it guards /dashboard and reload)."""

FAILOVER_HOLD_S = 90.0
"""How long a failed realtime leg's provisional `call.ended` waits for the failover leg that
replaces it (WEBHOOK_FAILOVER_HOLD_SECONDS): longer than Twilio needs to request the
`<Connect action>` callback and open the ConversationRelay socket (seconds), so the relay leg's
event always comes first; when no leg follows and no callback released the event early (the
caller hung up meanwhile), the business gets it this late."""


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
    router_reply_timeout: float = Field(default=60.0, gt=0)
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
    max_pending_streams: int = Field(default=50, ge=1)
    http_header_timeout: float = Field(default=10.0, gt=0)
    http_body_timeout: float = Field(default=10.0, gt=0)
    stream_start_timeout: float = Field(default=5.0, gt=0)
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
    webhook_signing_secret: str = ""
    webhook_retry_first_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=86_400.0, gt=0)
    webhook_lease_seconds: float = Field(default=60.0, gt=0)
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_failover_hold_seconds: float = Field(default=FAILOVER_HOLD_S, gt=0)
    # Twilio's REST API (outbound calls, recordings): the account, and an API key pair as an
    # alternative to the auth token; the base URL moves it onto a fake in tests and simulate.
    twilio_account_sid: str = ""
    twilio_api_key_sid: str = ""
    twilio_api_key_secret: str = ""
    twilio_api_base_url: str = Field(default="https://api.twilio.com", pattern=r"^https?://")
    # Outbound calls created per second across the process (Twilio's default account limit: 1).
    outbound_cps: float = Field(default=1.0, gt=0, le=100)

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

    @field_validator("admin_token")
    @classmethod
    def _long_admin_token(cls, value: str) -> str:
        if value and len(value) < MIN_ADMIN_TOKEN_CHARS:
            raise ValueError(
                f"is {len(value)} characters; use at least {MIN_ADMIN_TOKEN_CHARS} random "
                "characters (e.g. `openssl rand -hex 32`), or leave it empty to disable the "
                "admin endpoints"
            )
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

    def require_webhook_secret(self, uses_webhooks: bool, uses_events: bool = False) -> None:
        """Refuse to start webhooks that nobody could verify: a config with a `webhooks:`
        entry needs WEBHOOK_SIGNING_SECRET, and call events need DATABASE_URL (their outbox);
        ConfigError names the setting."""
        if uses_events and not self.database_url:
            raise ConfigError(
                "is empty, but the config has call_events webhooks: their events wait in an "
                "outbox in the records database; set DATABASE_URL",
                path="DATABASE_URL",
            )
        if uses_webhooks and len(self.webhook_signing_secret.strip()) < 16:
            raise ConfigError(
                "is empty or shorter than 16 characters, but the config has webhooks: every "
                "webhook request is signed with it; set a long random secret",
                path="WEBHOOK_SIGNING_SECRET",
            )


def env_name(field: str) -> str:
    """The environment variable that sets `field` (`config_path` -> `VOICEAGENT_CONFIG`)."""
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else field.upper()


ENV_NAMES: dict[str, str] = {env_name(field): field for field in Settings.model_fields}
"""Every environment variable `load_settings` reads, mapped to its `Settings` field."""


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
) -> Settings:
    """Settings from the environment overlaid on `env_file` (if it exists); ConfigError if invalid.

    `environ` replaces the process environment (tests pass exactly the variables they mean).
    Empty values count as unset (the default applies), as in `.env.example`. Other variables in
    `.env` (tool secrets such as ORDERS_API_TOKEN) are left to whoever reads them.
    """
    values: dict[str, Any] = {}
    if env_file is not None and env_file.is_file():
        values.update(_by_field(DotEnvSettingsSource(Settings, env_file=env_file)()))
    if environ is None:
        values.update(_by_field(EnvSettingsSource(Settings)()))
    else:
        values.update(_by_field({k: v for k, v in environ.items() if v != ""}))
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise settings_error(Settings, exc, env_name) from exc


def _by_field(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` keyed by field name, whether a source keyed them by variable, alias or field;
    anything that is not a setting is left out."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        field = key if key in Settings.model_fields else ENV_NAMES.get(key.upper())
        if field is not None:
            out[field] = value
    return out
