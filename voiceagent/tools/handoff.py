"""Where a transfer goes, pure: the destination NAME travels, the number is looked up.

A ``transfer_call`` names one of the number's configured destinations. The call carries only
that name: in ConversationRelay's ``end`` ``handoffData`` (a JSON string Twilio hands back to
the ``<Connect action>`` verbatim) or in the shared call outcome (realtime). Whoever answers
the action looks the name up in the call's own plan (``destination_number``), so neither a
prompt-injected model nor a forged callback can make us dial a number the YAML does not list.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from voiceagent.tools.spec import ToolSpec, TransferCallSpec

TRANSFER_REASON = "transfer"


def transfer_handoff(destination_name: str) -> str:
    """The ``handoffData`` of a ConversationRelay ``end`` for a transfer (a JSON string)."""
    return orjson.dumps({"reasonCode": TRANSFER_REASON, "destination": destination_name}).decode()


def handoff_destination(handoff_data: str | None) -> str | None:
    """The destination name a transfer's ``handoffData`` carries; None for anything else
    (no data, not JSON, another reason: e.g. a handoff the static ``relay.handoff`` serves)."""
    if not handoff_data:
        return None
    try:
        data = orjson.loads(handoff_data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("reasonCode") != TRANSFER_REASON:
        return None
    name = data.get("destination")
    return name if isinstance(name, str) and name else None


def destination_number(specs: Iterable[ToolSpec], name: str | None) -> str | None:
    """The configured number of destination ``name`` in the plan's ``transfer_call``, or None."""
    if not name:
        return None
    for spec in specs:
        if isinstance(spec, TransferCallSpec):
            destination = spec.destinations.get(name)
            return destination.number if destination is not None else None
    return None
