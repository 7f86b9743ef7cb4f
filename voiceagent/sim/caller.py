"""One call, whichever protocol the server answers with: the simulated callers' front door.

``place_call`` POSTs the signed ``/voice`` webhook once and hands the TwiML to the caller of
the protocol it connects: ``<Stream>`` to ``media_caller``, ``<ConversationRelay>`` to
``relay_caller``. Both take the same script (``script.py``) and return a ``CallRecord``
(``MediaCallRecord`` / ``RelayCallRecord`` with their extras); any other answer (a refusal,
a 403, a 503) comes back as a plain ``CallRecord`` with ``protocol`` None.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from voiceagent.sim import media_caller, relay_caller
from voiceagent.sim.script import CallRecord, Script
from voiceagent.sim.webhooks import SimTarget, Webhooks, call_form, new_sid

MEDIA_ONLY = frozenset({"record_timing", "skip_start"})
RELAY_ONLY = frozenset({"speed", "quiet_s"})


async def place_call(
    target: SimTarget,
    to: str,
    script: Script,
    *,
    from_: str = "+14155550100",
    call_sid: str | None = None,
    http: aiohttp.ClientSession | None = None,
    bad_signature: bool = False,
    twiml: str | None = None,
    direction: str = "inbound",
    **extras: Any,
) -> CallRecord:
    """Place one call; ``extras`` go to the protocol's caller that understands them
    (``record_timing``, ``skip_start``: Media Streams; ``speed``, ``quiet_s``: relay).

    ``twiml``, when given, is TwiML Twilio already executes for this call (e.g. what an
    earlier ``<Connect action>`` answered): the call starts from it instead of ``/voice``.
    """
    session = http or aiohttp.ClientSession()
    try:
        sid = call_sid or new_sid("CA")
        form = call_form(sid, to, from_, new_sid("AC"), direction)
        hooks = Webhooks(target, session, form, bad_signature)
        status, twiml = (0, twiml) if twiml is not None else await hooks.voice()
        common: dict[str, Any] = {"from_": from_, "call_sid": sid, "http": session,
                                  "bad_signature": bad_signature, "twiml": twiml,
                                  "direction": direction}  # fmt: skip
        record: CallRecord
        answered = status in (0, 200)  # 0: the caller was given the TwiML
        if answered and "<ConversationRelay" in twiml:
            kw = {k: v for k, v in extras.items() if k not in MEDIA_ONLY}
            record = await relay_caller.place_call(target, to, script, **common, **kw)
        elif answered and "<Stream" in twiml:
            kw = {k: v for k, v in extras.items() if k not in RELAY_ONLY}
            record = await media_caller.place_call(target, to, script, **common, **kw)
        else:
            record = CallRecord(call_sid=sid, to=to, twiml=twiml)
        record.webhook_status = status
        return record
    finally:
        if http is None:
            await session.close()
