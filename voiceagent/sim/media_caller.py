"""A simulated Twilio for Media Streams: one whole call against a voiceagent server.

``place_call`` POSTs the signed ``/voice`` webhook (docs/protocols.md, Twilio §4.1), follows the
TwiML, opens the signed WebSocket (signed over the public ``wss://`` URL, connected to the local
one) and runs it as Twilio does (``media_stream.py``: ``start`` with the ``<Parameter>``s, real-time
media from the script, playback with marks and ``clear``). When the server closes the socket,
or the caller hung up, it POSTs the signed ``<Connect action>`` callback and keeps the TwiML
it gets back.
"""

from __future__ import annotations

import contextlib
import time
import xml.etree.ElementTree as ET

import aiohttp

from voiceagent.sim.media_playback import MediaCallRecord
from voiceagent.sim.media_stream import MediaStreamCaller
from voiceagent.sim.script import Script
from voiceagent.sim.webhooks import SimTarget, Webhooks, call_form, new_sid


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
    record_timing: bool = False,
    skip_start: bool = False,
    direction: str = "inbound",
) -> MediaCallRecord:
    """Place one simulated Media Streams call and return what the caller observed.

    ``twiml``, when given, is TwiML Twilio already executes for this call: the call starts from
    it instead of ``/voice``. ``record_timing`` keeps every frame's send and receive time;
    ``skip_start`` streams media without ``start`` (protocol-error tests).
    """
    session = http or aiohttp.ClientSession()
    try:
        sid = call_sid or new_sid("CA")
        account_sid = new_sid("AC")
        form = call_form(sid, to, from_, account_sid, direction)
        hooks = Webhooks(target, session, form, bad_signature)
        record = MediaCallRecord(call_sid=sid, to=to)
        if twiml is None:
            record.webhook_status, record.twiml = await hooks.voice()
        else:
            record.twiml = twiml
        if record.webhook_status not in (0, 200) or not _follow_twiml(record):
            record.protocol = None
            return record
        caller = MediaStreamCaller(record, account_sid, new_sid("MZ"))
        caller.record_timing, caller.skip_start = record_timing, skip_start
        await _stream(hooks, caller, script)
        return record
    finally:
        if http is None:
            await session.close()


async def _stream(hooks: Webhooks, caller: MediaStreamCaller, script: Script) -> None:
    """The WebSocket, then the action callback (Twilio requests it however it ended, §0.5)."""
    record = caller.record
    headers = {"x-twilio-signature": hooks.sign(record.socket_url, {})}
    try:
        ws = await hooks.http.ws_connect(
            hooks.target.local(record.socket_url), headers=headers, autoping=True
        )
    except aiohttp.WSServerHandshakeError as exc:
        record.ws_status = exc.status
        return
    async with ws:
        await caller.run(ws, script)
    record.ended_at = time.monotonic()
    if record.action_url:
        status = "in-progress" if record.closed_by == "server" else "completed"
        with contextlib.suppress(aiohttp.ClientError):  # e.g. the server has gone
            record.action_status, record.action_twiml = await hooks.action(
                record.action_url, CallStatus=status
            )


def _follow_twiml(record: MediaCallRecord) -> bool:
    """Read ``<Connect action><Stream url>``; False for any other TwiML (e.g. a refusal)."""
    try:
        root = ET.fromstring(record.twiml)
    except ET.ParseError:
        return False
    connect = root.find("Connect")
    stream = connect.find("Stream") if connect is not None else None
    if connect is None or stream is None:
        return False
    record.action_url = connect.get("action", "")
    record.socket_url = stream.get("url", "")
    record.parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return True
