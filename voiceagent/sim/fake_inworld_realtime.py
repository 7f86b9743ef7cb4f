"""A fake Inworld Realtime server (aiohttp) for tests, benchmarks and ``voiceagent simulate``.

Checks auth before the upgrade (401 unless ``Authorization: Basic <key>``), requires the
``key`` and ``protocol=realtime`` query, sends ``session.created`` on connect, then behaves as
``fake_realtime_connection.FakeSession`` describes. Fault injection and script live in
``FakeRealtimeOptions``. ``FakeInworldRealtime`` runs it on a free port and keeps a record
of every session; ``python -m voiceagent.sim.fake_inworld_realtime`` runs it standalone
(benchmarks), with ``GET /_fake/stats`` exposing the records as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import time
import weakref
from typing import Any

from aiohttp import WSMsgType, web

from voiceagent.sim.fake_options import FakeRealtimeOptions
from voiceagent.sim.fake_realtime_connection import FakeSession
from voiceagent.sim.fake_responses import SessionRecord

SESSION_PATH = "/api/v1/realtime/session"


class FakeInworldRealtime:
    """The fake server and its records; ``async with`` starts it on 127.0.0.1 (free port)."""

    def __init__(self, options: FakeRealtimeOptions | None = None) -> None:
        self.options = options or FakeRealtimeOptions()
        self.sessions: list[SessionRecord] = []
        self.refused: list[int] = []
        self.open_sessions = 0
        self._none_open = asyncio.Event()
        self._none_open.set()
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- app ------------------------------------------------------------------------------------
    def app(self) -> web.Application:
        """The aiohttp application (usable with aiohttp test servers)."""
        app = web.Application()
        app.router.add_get(SESSION_PATH, self._handle)
        app.router.add_get("/_fake/stats", self._stats)
        app.on_shutdown.append(self._close_all)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        opts = self.options
        if request.headers.get("Authorization") != f"Basic {opts.api_key}":
            self.refused.append(401)
            return web.json_response(
                {"error": {"code": 16, "message": "Unauthenticated"}}, status=401
            )
        key = request.query.get("key", "")
        if not key or request.query.get("protocol") != "realtime":
            self.refused.append(400)
            return web.json_response(
                {"error": "key and protocol=realtime are required"}, status=400
            )
        after = opts.refuse_after_sessions
        refuse = opts.refuse_status or (503 if after is not None and len(self.sessions) >= after
                                        else None)  # fmt: skip
        if refuse is not None:
            self.refused.append(refuse)
            return web.json_response({"error": "refused by fault injection"}, status=refuse)
        if opts.connect_delay_s and self.sessions:  # a slow new session, not a refusal
            await asyncio.sleep(opts.connect_delay_s)
        over = opts.max_sessions is not None and self.open_sessions >= opts.max_sessions
        if over and opts.over_capacity == "refuse":
            self.refused.append(429)
            return web.json_response({"error": "too many sessions"}, status=429)
        ws = web.WebSocketResponse(compress=False, max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        if over:
            self.refused.append(0)
            await ws.send_str('{"errorType":"SESSION_RESOURCES_EXHAUSTED"}')
            await ws.close()
            return ws
        await self._serve(ws, SessionRecord(key))
        return ws

    async def _serve(self, ws: web.WebSocketResponse, record: SessionRecord) -> None:
        self.sessions.append(record)
        self.open_sessions += 1
        self._none_open.clear()
        self._sockets.add(ws)
        session = FakeSession(ws, record, self.options)
        limit = self.options.drop_sessions
        session.may_drop = limit is None or len(self.sessions) <= limit
        dropper = None
        if self.options.drop_after_s is not None:
            dropper = asyncio.get_running_loop().call_later(
                self.options.drop_after_s,
                lambda: asyncio.ensure_future(ws.close(code=1011, message=b"fake: dropped")),
            )
        try:
            await session.emit(
                {"type": "session.created", "session": {"id": record.key, **session.config}}
            )
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await session.handle(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await session.error("invalid_event", "binary frames are not supported")
        finally:
            if dropper is not None:
                dropper.cancel()
            await session.close()
            record.closed = time.monotonic()
            self.open_sessions -= 1
            if self.open_sessions == 0:
                self._none_open.set()

    async def _close_all(self, app: web.Application) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"server shutdown")

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    def stats(self) -> dict[str, Any]:
        """Open sessions and, per session, what the benchmarks measure."""
        return {
            "open_sessions": self.open_sessions,
            "refused": self.refused,
            "sessions": [
                {
                    "key": s.key,
                    "closed": s.closed is not None,
                    "appends": s.appends,
                    "audio_bytes": s.audio_bytes,
                    "append_times": s.append_times,
                    "responses": [
                        {"id": r.id, "status": r.status, "delta_times": r.delta_times}
                        for r in s.responses
                    ],
                }
                for s in self.sessions
            ],
        }

    # -- running --------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen; return the session URL (what INWORLD_REALTIME_URL should be)."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self.url

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{SESSION_PATH}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_no_open_sessions(self, within: float = 5.0) -> bool:
        """Wait until every session is closed; False if some are still open after ``within`` s."""
        try:
            async with asyncio.timeout(within):
                await self._none_open.wait()
        except TimeoutError:
            return False
        return True

    def session(self, call_sid: str) -> SessionRecord:
        """The session opened for ``call_sid`` (voiceagent puts the CallSid in the key)."""
        return next(s for s in self.sessions if call_sid in s.key)

    async def __aenter__(self) -> FakeInworldRealtime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def main(argv: list[str] | None = None) -> None:
    """Run the fake standalone (benchmarks): prints ``ready <url>`` once listening."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="fake-inworld-key")
    parser.add_argument("--chunk-ms", type=int, default=100)
    parser.add_argument("--chunk-gap", type=float, default=0.02)
    parser.add_argument("--first-delta-delay", type=float, default=0.05)
    parser.add_argument("--response-ms", type=int, default=None)
    parser.add_argument("--record-timing", action="store_true")
    args = parser.parse_args(argv)
    opts = FakeRealtimeOptions(
        api_key=args.api_key,
        chunk_ms=args.chunk_ms,
        chunk_gap_s=args.chunk_gap,
        first_delta_delay_s=args.first_delta_delay,
        response_audio_ms=args.response_ms,
        record_timing=args.record_timing,
    )

    if args.record_timing:  # measuring: keep GC pauses out of the send stamps
        gc.disable()

    async def run() -> None:
        fake = FakeInworldRealtime(opts)
        url = await fake.start(port=args.port)
        print(f"ready {url}", flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
