"""The in-memory rig of `tests/modes`: a mode inside the shared lifecycle with no sockets.

`memory_services(config, **settings)` builds the app's Services with the in-memory upstream
seams (`MemoryRealtimeConnector`, `ScriptedRouter`) and a collecting sink; `MemoryCall.start`
runs one call on an in-memory phone channel whose other end (`twilio`) the test plays.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from voiceagent.config import Config
from voiceagent.modes.base import Mode
from voiceagent.modes.lifecycle import serve_call
from voiceagent.modes.realtime_passthrough import RealtimePassthrough
from voiceagent.modes.registry import ModeRegistry
from voiceagent.modes.relay_router import RelayRouter
from voiceagent.protocols import conversation_relay as cr
from voiceagent.protocols import twilio_media as tm
from voiceagent.protocols.inworld_router import ChatRequest, RouterChunk
from voiceagent.protocols.signature import stream_token
from voiceagent.runtime import ConfigHolder, Services
from voiceagent.session.call import CallSession
from voiceagent.session.latency import TurnTiming
from voiceagent.settings import Settings
from voiceagent.store.live.call_state import CallOutcome
from voiceagent.transport.channel import MemoryChannel, memory_pair
from voiceagent.transport.upstream import MemoryRealtimeConnector, ScriptedRouter

CALL_SID = "CA" + "a" * 32
STREAM_SID = "MZ" + "b" * 32
ACCOUNT_SID = "AC" + "c" * 32
TOKEN = "test-auth-token"


class Sink:
    """Collects the call milestones the lifecycle reports."""

    def __init__(self) -> None:
        self.ended: dict[str, CallSession] = {}
        self.turns: list[TurnTiming] = []

    def call_started(self, call: CallSession) -> None:
        return None

    def turn_finished(self, call: CallSession, turn: TurnTiming) -> None:
        self.turns.append(turn)

    def call_ended(self, call: CallSession) -> None:
        self.ended[call.call_sid] = call


def spoken(text: str, ms: int = 200) -> list[RouterChunk]:
    """Router chunks of one sentence: its transcript, then 48 kHz PCM audio of `ms`."""
    pcm = b"\x00\x10" * (48 * ms)
    return [RouterChunk(transcript=text), RouterChunk(audio=pcm)]


def default_script(request: ChatRequest) -> Sequence[RouterChunk]:
    return [*spoken("Sure. "), *spoken("Anything else? "), RouterChunk(finish_reason="stop")]


@asynccontextmanager
async def memory_services(
    config: Config, script: Any = default_script, gap_s: float = 0.0, **settings: Any
) -> AsyncIterator[Services]:
    values: dict[str, Any] = {"public_url": "https://pub.example.test",
                              "twilio_auth_token": TOKEN, "database_url": ""}  # fmt: skip
    values.update(settings)
    async with aiohttp.ClientSession() as http:
        services = Services(
            settings=Settings(**values), config=ConfigHolder(config), http=http,
            realtime=MemoryRealtimeConnector(), router=ScriptedRouter(script, gap_s),
            modes=ModeRegistry([RealtimePassthrough(), RelayRouter()]),
        )  # fmt: skip
        services.sink = Sink()
        yield services


def start_frame(number: str, services: Services, token: str | None = None) -> str:
    params = {"number": number}
    params["token"] = token or stream_token(services.settings.twilio_auth_token, CALL_SID, params)
    info = tm.StartInfo(account_sid=ACCOUNT_SID, stream_sid=STREAM_SID, call_sid=CALL_SID,
                        custom_parameters=params)  # fmt: skip
    return tm.dump(tm.Start(sequence_number=1, stream_sid=STREAM_SID, start=info))


def setup_frame(number: str, services: Services, **params: str) -> str:
    bound = {"number": number, **params}
    token = stream_token(services.settings.twilio_auth_token, CALL_SID, bound)
    setup = cr.Setup(
        session_id="VX1",
        call_sid=CALL_SID,
        to=number,
        custom_parameters={**bound, "token": token},
    )
    return orjson.dumps(setup.model_dump(by_alias=True)).decode()


def media_frame(audio: bytes, chunk: int) -> str:
    info = tm.MediaInfo(track="inbound", chunk=chunk, timestamp=chunk * 20,
                        payload=base64.b64encode(audio).decode())  # fmt: skip
    return tm.dump(tm.Media(stream_sid=STREAM_SID, media=info))


def stop_frame() -> str:
    info = tm.StopInfo(account_sid=ACCOUNT_SID, call_sid=CALL_SID)
    return tm.dump(tm.Stop(stream_sid=STREAM_SID, stop=info))


@dataclass
class MemoryCall:
    """One call served on an in-memory phone channel; the test is Twilio on `twilio`."""

    services: Services
    phone: MemoryChannel
    twilio: MemoryChannel
    task: asyncio.Task[None]
    summary: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(cls, services: Services, mode: Mode, buffer_frames: int = 1024) -> MemoryCall:
        """`buffer_frames`: what the phone channel holds unread (a slow Twilio: few)."""
        phone, twilio = memory_pair(buffer_frames)
        return cls(services, phone, twilio, asyncio.create_task(serve_call(phone, services, mode)))

    @property
    def connector(self) -> MemoryRealtimeConnector:
        assert isinstance(self.services.realtime, MemoryRealtimeConnector)
        return self.services.realtime

    @property
    def router(self) -> ScriptedRouter:
        assert isinstance(self.services.router, ScriptedRouter)
        return self.services.router

    async def phone_frames(self, n: int) -> list[dict[str, Any]]:
        """The next `n` frames the mode sent to Twilio."""
        frames = []
        async with asyncio.timeout(5):
            for _ in range(n):
                raw = await self.twilio.receive()
                assert raw is not None, "the phone channel closed"
                frames.append(orjson.loads(raw))
        return frames

    async def ended(self) -> CallOutcome:
        """Wait for the call to end; its outcome (put back for the test) and summary."""
        await asyncio.wait_for(self.task, 5)
        sink = self.services.sink
        assert isinstance(sink, Sink)
        self.summary = sink.ended[CALL_SID].summary()
        outcome = await self.services.take_outcome(CALL_SID)
        assert outcome is not None
        await self.services.keep_outcome(CALL_SID, outcome)
        return outcome
