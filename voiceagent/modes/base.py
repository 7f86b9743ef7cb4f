"""What a mode is: TwiML for `/voice`, one coroutine per call, and its `<Connect action>` answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Protocol

from voiceagent.config import CallPlan
from voiceagent.runtime import Services
from voiceagent.transport.channel import Channel


class Mode(Protocol):
    """One integration. Looked up in `voiceagent.modes.MODES` by the config's mode name."""

    name: ClassVar[str]
    ws_path: ClassVar[str]  # the WebSocket route Twilio connects to for this mode

    def twiml(
        self, plan: CallPlan, call_sid: str, services: Services, *,
        failover_from: str | None = None,
    ) -> str:  # fmt: skip
        """TwiML answering `/voice` for a call this mode serves (or taking over a call whose
        `failover_from` mode failed)."""
        ...

    async def serve(self, phone: Channel, services: Services) -> None:
        """Run one whole call over an accepted, authenticated phone-side channel."""
        ...

    def action(self, form: Mapping[str, str], services: Services) -> str:
        """TwiML answering the signed `<Connect action>` callback after the socket ended."""
        ...
