"""The business's webhooks: the call context fetched before the agent speaks, and signed,
retried, durable call events after (docs/webhooks.md).

`verify_signature(secret, body, header)` is for receivers written in Python.
"""

from __future__ import annotations

from voiceagent.webhooks.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, sign, verify_signature

__all__ = ["EVENT_ID_HEADER", "SIGNATURE_HEADER", "sign", "verify_signature"]
