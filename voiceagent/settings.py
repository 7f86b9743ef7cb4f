"""Environment settings (secrets, URLs, ports). Per-number behaviour lives in YAML (config.py).

Read from the process environment and, if present, a `.env` file in the working directory.
Every setting is listed, with a comment, in `.env.example`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from voiceagent.errors import ConfigError

DEFAULT_CONFIG = Path("config/voiceagent.yaml")


MIN_ADMIN_TOKEN_CHARS = 32
"""An ADMIN_TOKEN shorter than this is refused at start (it guards /dashboard and reload)."""


class Settings(BaseModel):
    """Process-wide settings; one instance per app, never module-level state."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    public_url: str = Field(
        default="https://localhost:8080",
        description="The https base URL Twilio reaches (behind proxies: the outside URL).",
    )
    twilio_auth_token: str = ""
    inworld_api_key: str = ""
    inworld_realtime_url: str = "wss://api.inworld.ai/api/v1/realtime/session"
    inworld_router_url: str = "https://api.inworld.ai/v1/chat/completions"
    config_path: Path = DEFAULT_CONFIG
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    insecure_skip_signature: bool = False
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
    # Twilio's REST API (outbound calls, recordings): the account, and an API key pair as an
    # alternative to the auth token; the base URL moves it onto a fake in tests and simulate.
    twilio_account_sid: str = ""
    twilio_api_key_sid: str = ""
    twilio_api_key_secret: str = ""
    twilio_api_base_url: str = Field(default="https://api.twilio.com", pattern=r"^https?://")
    # Outbound calls created per second across the process (Twilio's default account limit: 1).
    outbound_cps: float = Field(default=1.0, gt=0, le=100)

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


ENV_NAMES: dict[str, str] = {
    "PUBLIC_URL": "public_url",
    "TWILIO_AUTH_TOKEN": "twilio_auth_token",
    "INWORLD_API_KEY": "inworld_api_key",
    "INWORLD_REALTIME_URL": "inworld_realtime_url",
    "INWORLD_ROUTER_URL": "inworld_router_url",
    "VOICEAGENT_CONFIG": "config_path",
    "HOST": "host",
    "PORT": "port",
    "LOG_LEVEL": "log_level",
    "LOG_FORMAT": "log_format",
    "VOICEAGENT_INSECURE_SKIP_SIGNATURE": "insecure_skip_signature",
    "DRAIN_GRACE_SECONDS": "drain_grace_seconds",
    "UPSTREAM_CONNECT_TIMEOUT": "upstream_connect_timeout",
    "ROUTER_FIRST_BYTE_TIMEOUT": "router_first_byte_timeout",
    "ROUTER_REPLY_TIMEOUT": "router_reply_timeout",
    "MAX_FRAME_BYTES": "max_frame_bytes",
    "PHONE_IDLE_TIMEOUT": "phone_idle_timeout",
    "UPSTREAM_IDLE_TIMEOUT": "upstream_idle_timeout",
    "HEARTBEAT_SECONDS": "heartbeat_seconds",
    "SEND_TIMEOUT": "send_timeout",
    "CLIP_TTL_SECONDS": "clip_ttl_seconds",
    "CLIP_STREAM_UNKNOWN_LENGTH": "clip_stream_unknown_length",
    "REDIS_URL": "redis_url",
    "DATABASE_URL": "database_url",
    "ADMIN_TOKEN": "admin_token",
    "MAX_CONCURRENT_CALLS": "max_concurrent_calls",
    "MAX_PENDING_STREAMS": "max_pending_streams",
    "HTTP_HEADER_TIMEOUT": "http_header_timeout",
    "HTTP_BODY_TIMEOUT": "http_body_timeout",
    "STREAM_START_TIMEOUT": "stream_start_timeout",
    "REALTIME_SESSION_BUDGET": "realtime_session_budget",
    "REALTIME_SESSION_LEASE_SECONDS": "realtime_session_lease_seconds",
    "RECORDS_BUFFER": "records_buffer",
    "OVERLOAD_POLICY": "overload_policy",
    "OVERLOAD_MESSAGE": "overload_message",
    "METRICS_HOST": "metrics_host",
    "METRICS_PORT": "metrics_port",
    "WEBHOOK_SIGNING_SECRET": "webhook_signing_secret",
    "WEBHOOK_RETRY_FIRST_SECONDS": "webhook_retry_first_seconds",
    "WEBHOOK_RETRY_MAX_SECONDS": "webhook_retry_max_seconds",
    "WEBHOOK_LEASE_SECONDS": "webhook_lease_seconds",
    "WEBHOOK_POLL_SECONDS": "webhook_poll_seconds",
    "WEBHOOK_TIMEOUT_SECONDS": "webhook_timeout_seconds",
    "TWILIO_ACCOUNT_SID": "twilio_account_sid",
    "TWILIO_API_KEY_SID": "twilio_api_key_sid",
    "TWILIO_API_KEY_SECRET": "twilio_api_key_secret",
    "TWILIO_API_BASE_URL": "twilio_api_base_url",
    "OUTBOUND_CPS": "outbound_cps",
}


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
) -> Settings:
    """Build Settings from `.env` (if any) overlaid by the environment; ConfigError if invalid."""
    merged: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    values = {field: merged[env] for env, field in ENV_NAMES.items() if merged.get(env, "") != ""}
    for key in ("log_level", "log_format", "overload_policy"):
        if key in values:
            values[key] = values[key].lower()
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        env = next((e for e, f in ENV_NAMES.items() if f == field), field)
        raise ConfigError(err["msg"], path=env) from exc
