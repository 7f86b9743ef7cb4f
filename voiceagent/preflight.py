"""What `voiceagent serve` checks before it listens: refusals (ConfigError) and loud warnings.

Each is one line naming the setting and what to do; none is a traceback.
"""

from __future__ import annotations

import errno

from voiceagent.errors import ConfigError
from voiceagent.settings import Settings


def check_serving(settings: Settings) -> list[str]:
    """Raise ConfigError for settings no call could work with; return the loud warnings."""
    settings.require_signature_key()
    if not settings.inworld_api_key.strip():
        raise ConfigError(
            "is empty, so every call would be refused by Inworld; set it to the API key "
            "shown in the Inworld portal (base64 'keyId:secret')",
            path="INWORLD_API_KEY",
        )
    warnings = []
    if settings.public_url.startswith("http://"):
        warnings.append(
            f"PUBLIC_URL is {settings.public_url}: Twilio calls webhooks only over https:// "
            "and opens Media Streams and ConversationRelay only over wss://, so real calls "
            "cannot reach this server; use the https URL of your proxy or tunnel"
        )
    return warnings


def listen_error(exc: OSError, host: str, port: int, setting: str) -> ConfigError:
    """A failed bind as one line: which address, why, and which setting moves it."""
    if exc.errno == errno.EADDRINUSE:
        why = "is already in use (another voiceagent or server is listening there)"
    elif exc.errno == errno.EACCES:
        why = "needs privileges (ports below 1024)"
    else:
        why = f"cannot be listened on: {exc.strerror or exc}"
    return ConfigError(f"{host}:{port} {why}; stop it or choose another {setting}", path=setting)
