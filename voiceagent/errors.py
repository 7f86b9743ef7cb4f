"""The one exception tree of voiceagent.

::

    VoiceAgentError
    ├── ConfigError          settings or per-number YAML are invalid (carries the YAML path)
    ├── ProtocolError        a peer sent a frame we cannot parse (bad JSON, unknown shape, ...)
    ├── SignatureError       an X-Twilio-Signature did not verify
    ├── UpstreamError        an Inworld API failed; ``kind`` says how (see UpstreamFailure)
    ├── TwilioApiError       Twilio's REST API refused or could not be reached (status, code)
    ├── OutboundRefused      an outbound call may not be placed (``kind``: why)
    ├── ClipNotFound         a clip URL is unknown or expired
    ├── ChannelClosed        a send on a channel (phone or upstream socket) whose peer has gone
    └── CallOver             raised inside a call's tasks to end it; its reason is already on
                             the CallSession (not a failure in itself)

A failure of our own code (any other exception) is never classified as an upstream failure:
the top of a call handler ends that call as ``internal_error``.

Third-party errors are mapped at the boundary (``raise UpstreamError(...) from exc``).
Only the top of a call handler catches broadly.
"""

from __future__ import annotations

from enum import StrEnum


class VoiceAgentError(Exception):
    """Base of every error voiceagent raises on purpose."""


class ConfigError(VoiceAgentError):
    """The configuration is invalid; ``path`` is the YAML path of the offending value."""

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class ProtocolError(VoiceAgentError):
    """A peer sent something that is not a valid frame of its protocol."""


class SignatureError(VoiceAgentError):
    """A Twilio request or WebSocket upgrade carried a missing or wrong signature."""


class UpstreamFailure(StrEnum):
    """Why an upstream (Inworld) session or request failed; used in logs, metrics and TwiML."""

    AUTH = "auth"  # 401/403: the API key is wrong
    CAPACITY = "capacity"  # concurrent-session cap reached (SESSION_RESOURCES_EXHAUSTED)
    RATE_LIMITED = "rate_limited"  # 429
    UNAVAILABLE = "unavailable"  # 5xx or connection refused
    TIMEOUT = "timeout"  # no answer / no first byte in time
    DROPPED = "dropped"  # the connection closed mid-call or mid-stream
    ERROR = "error"  # an error event or a 4xx we do not classify further


def failure_for_status(status: int) -> UpstreamFailure:
    """Classify an upstream HTTP error status (a refused upgrade or a failed request)."""
    if status in (401, 403):
        return UpstreamFailure.AUTH
    if status == 429:
        return UpstreamFailure.RATE_LIMITED
    if status >= 500:
        return UpstreamFailure.UNAVAILABLE
    return UpstreamFailure.ERROR


class UpstreamError(VoiceAgentError):
    """An Inworld API refused, failed or dropped; ``kind`` classifies it."""

    def __init__(
        self, kind: UpstreamFailure, message: str, *, status: int | None = None, body: str = ""
    ) -> None:
        self.kind = kind
        self.status = status
        self.body = body
        super().__init__(f"{kind.value}: {message}")


class TwilioApiError(VoiceAgentError):
    """Twilio's REST API answered with an error (``status``, Twilio's ``code``) or could not be
    reached (``status`` 0, ``code`` None)."""

    def __init__(self, message: str, *, status: int = 0, code: int | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        where = f"HTTP {status}" if status else "unreachable"
        super().__init__(f"Twilio REST API {where}" + (f" (error {code})" if code else "")
                         + f": {message}")  # fmt: skip


class RefusalKind(StrEnum):
    """Why an outbound dial was refused; used in errors, HTTP answers and metrics."""

    NOT_OUTBOUND = "not_outbound"  # the 'from' number has no outbound: settings
    INVALID = "invalid"  # a malformed request (number, variables)
    DO_NOT_CALL = "do_not_call"
    CALLING_HOURS = "calling_hours"
    BUSY = "busy"  # no capacity within the wait (max_concurrent, session budget)
    TWILIO = "twilio"  # Twilio refused the create


class OutboundRefused(VoiceAgentError):
    """An outbound call was not placed; ``kind`` says why."""

    def __init__(self, kind: RefusalKind, message: str) -> None:
        self.kind = kind
        super().__init__(message)


class ClipNotFound(VoiceAgentError):
    """A clip id is unknown or its clip has expired."""


class ChannelClosed(VoiceAgentError):
    """Sending on a channel whose peer has gone."""


class CallOver(VoiceAgentError):
    """Raised inside a call's tasks to end it (its reason is already on the CallSession)."""
