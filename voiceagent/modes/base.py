"""What a mode is: TwiML for `/voice`, the first frame of its socket, one conversation per call
(run inside the shared lifecycle, `lifecycle.py`, on a `CallRun`) and its `<Connect action>`
answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Protocol

from voiceagent.config import CallPlan
from voiceagent.modes.call_run import CallRun, CallStart
from voiceagent.modes.registry import ModeName, PhoneProtocol
from voiceagent.runtime import Services


class Mode(Protocol):
    """One integration. Looked up in the app's `ModeRegistry` by the config's mode name."""

    name: ClassVar[ModeName]
    phone_protocol: ClassVar[PhoneProtocol]  # what Twilio speaks on the phone socket
    ws_path: ClassVar[str]  # the WebSocket route Twilio connects to for this mode
    phone_sends_continuously: ClassVar[bool]  # silence on the socket means the peer is gone
    holds_realtime_session: ClassVar[bool]  # each call leases one Inworld Realtime session

    def twiml(
        self, plan: CallPlan, call_sid: str, services: Services, *,
        failover_from: str | None = None,
    ) -> str:  # fmt: skip
        """TwiML answering `/voice` for a call this mode serves (or taking over a call whose
        `failover_from` mode failed)."""
        ...

    def read_start(self, raw: str | bytes) -> CallStart | None:
        """The call's identity from the socket's start frame; None for a frame to skip before
        it; ProtocolError for anything else."""
        ...

    async def converse(self, run: CallRun) -> None:
        """Run the call's conversation until either side ends it."""
        ...

    async def action(self, form: Mapping[str, str], services: Services) -> str:
        """TwiML answering the signed `<Connect action>` callback after the socket ended."""
        ...
