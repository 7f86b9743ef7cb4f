"""The upstream seam: how a mode reaches Inworld, injected by the app factory.

`RealtimeConnector` opens one Inworld Realtime session per call (a `Channel`); `RouterClient`
streams one Router chat completion per reply. The aiohttp implementations talk to Inworld;
the in-memory ones (`MemoryRealtimeConnector`, `ScriptedRouter`) let `tests/modes` drive both
modes with no sockets at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Protocol

import aiohttp

from voiceagent.errors import UpstreamError
from voiceagent.protocols.inworld_router import ChatRequest, RouterChunk
from voiceagent.settings import Settings
from voiceagent.transport.channel import Channel, MemoryChannel, memory_pair
from voiceagent.transport.inworld_realtime import connect_realtime, session_key
from voiceagent.transport.router_client import stream_chat


class RealtimeConnector(Protocol):
    """Opens an Inworld Realtime session for a call; UpstreamError when that fails."""

    async def connect(self, call_sid: str) -> Channel: ...


class RouterClient(Protocol):
    """Streams one Router chat completion; UpstreamError on any failure. Closing the
    generator (or cancelling its consumer) aborts the request."""

    def stream(self, request: ChatRequest) -> AsyncGenerator[RouterChunk, None]: ...


class InworldRealtime:
    """The real connector: `wss://…/realtime/session?key=…&protocol=realtime` over aiohttp."""

    def __init__(self, http: aiohttp.ClientSession, settings: Settings) -> None:
        self._http = http
        self._settings = settings

    async def connect(self, call_sid: str) -> Channel:
        return await connect_realtime(self._http, self._settings, session_key(call_sid))


class InworldRouter:
    """The real Router client: one streaming POST per reply over aiohttp."""

    def __init__(self, http: aiohttp.ClientSession, settings: Settings) -> None:
        self._http = http
        self._settings = settings

    def stream(self, request: ChatRequest) -> AsyncGenerator[RouterChunk, None]:
        s = self._settings
        return stream_chat(
            self._http, s.inworld_router_url, s.inworld_api_key, request,
            s.router_first_byte_timeout, s.router_reply_timeout,
        )  # fmt: skip


class MemoryRealtimeConnector:
    """In-memory sessions: each `connect` hands the server end to `sessions` (a test plays
    Inworld on it); `refuse` makes the next connects fail with that error."""

    def __init__(self) -> None:
        self.sessions: asyncio.Queue[tuple[str, MemoryChannel]] = asyncio.Queue()
        self.refuse: UpstreamError | None = None
        self.buffer_frames = 1024  # frames a session holds unread (a slow Inworld: few)

    async def connect(self, call_sid: str) -> Channel:
        if self.refuse is not None:
            raise self.refuse
        ours, theirs = memory_pair(self.buffer_frames)
        await self.sessions.put((call_sid, theirs))
        return ours


Script = Callable[[ChatRequest], Sequence[RouterChunk | UpstreamError]]


class ScriptedRouter:
    """An in-memory Router: `script(request)` gives the chunks of the answer (an
    UpstreamError item is raised there); `gap_s` paces them; requests are recorded."""

    def __init__(self, script: Script, gap_s: float = 0.0) -> None:
        self.script = script
        self.gap_s = gap_s
        self.requests: list[ChatRequest] = []
        self.aborted = 0

    async def stream(self, request: ChatRequest) -> AsyncGenerator[RouterChunk, None]:
        self.requests.append(request)
        finished = False
        try:
            for item in self.script(request):
                await asyncio.sleep(self.gap_s)
                if isinstance(item, UpstreamError):
                    raise item
                yield item
            finished = True
        finally:
            if not finished:
                self.aborted += 1
