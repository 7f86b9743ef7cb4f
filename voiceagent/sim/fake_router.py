"""A fake Inworld Router (chat completions with LLM + TTS over SSE), as docs/protocols.md, Inworld
§2 shows.

A real aiohttp server. It checks auth (`Basic` or `Bearer` with the configured key) and the
body (`parse_request`, 400 on a bad one), then streams per sentence a transcript chunk and the
sentence's audio (48 kHz PCM16 speech-like signal, duration proportional to the text), a
finish chunk with usage, and `data: [DONE]`. Without an `audio` block it streams text deltas
(`delta.content`). Delays (time to first byte, synthesis time per sentence) are configurable;
faults can be queued per request (HTTP error in either body shape, stall before the first
byte or mid-stream, connection dropped mid-stream). Every request is recorded with its
timeline, and a client that aborts mid-stream is survived and recorded as aborted.

Tools (``fake_router_tools``): scripted calls stream as ``tool_calls`` pieces ending with
``finish_reason: "tool_calls"`` (words of the script's ``say`` first, with audio); a request
ending in ``tool`` results gets a spoken answer using them; an inconsistent tool history is a 400.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections import deque
from collections.abc import Callable

from aiohttp import web

from voiceagent.errors import ProtocolError
from voiceagent.protocols import inworld_router as ir
from voiceagent.sim.fake_router_replies import (
    GREETING_MARKER,
    RecordedRequest,
    RouterFault,
    derived_answer,
    sentence_audio,
    split_sentences,
    timelines,
    usage,
)
from voiceagent.sim.fake_router_tools import (
    normalized_body,
    plan_reply,
    raw_messages,
    tool_message_error,
)
from voiceagent.sim.fake_tool_calls import ScriptedToolCall
from voiceagent.tools.router_calls import tool_call_chunks

__all__ = [
    "GREETING_MARKER",
    "FakeRouter",
    "RecordedRequest",
    "RouterFault",
    "derived_answer",
    "main",
]


class FakeRouter:
    """The fake server; `url` is valid after `start()`."""

    def __init__(
        self,
        *,
        api_key: str = "test-inworld-key",
        ttfb_s: float = 0.0,
        sentence_s: float = 0.0,
        ms_per_char: float = 50.0,
        audio_chunk_ms: float = 100.0,
        mirror_content: bool = False,
        answer: Callable[[ir.ChatRequest], str] = derived_answer,
        tool_calls: tuple[ScriptedToolCall, ...] = (),
        tool_answer: str = "Here is what I found: {output}",
    ) -> None:
        self.api_key = api_key
        self.ttfb_s = ttfb_s
        self.sentence_s = sentence_s
        self.ms_per_char = ms_per_char
        self.audio_chunk_ms = audio_chunk_ms
        self.mirror_content = mirror_content
        self.answer = answer
        self.tool_calls = tool_calls
        self.tool_answer = tool_answer
        self.answers: deque[str] = deque()  # canned answers, used before `answer`
        self.faults: deque[RouterFault | None] = deque()  # one per request, in order
        self.requests: list[RecordedRequest] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_get("/_records", self._records)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(
            self.app(), access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.url = f"http://{host}:{self._runner.addresses[0][1]}/v1/chat/completions"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _records(self, request: web.Request) -> web.Response:
        """The recorded timelines as JSON (for a benchmark running the fake as a process)."""
        return web.json_response(timelines(self.requests))

    # -- handler ---------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        auth = request.headers.get("Authorization", "")
        record = RecordedRequest(auth, None, raw, time.monotonic())
        self.requests.append(record)
        if auth not in (f"Basic {self.api_key}", f"Bearer {self.api_key}"):
            return self._error(record, 401, "openai", "invalid API key")
        try:
            record.body = ir.parse_request(normalized_body(raw))
        except ProtocolError as exc:
            return self._error(record, 400, "openai", str(exc))
        invalid = tool_message_error(raw_messages(raw))
        if invalid is not None:
            return self._error(record, 400, "openai", invalid)
        fault = self.faults.popleft() if self.faults else None
        if fault is not None and fault.kind == "http":
            return self._error(record, fault.status, fault.style, fault.message)
        if fault is not None and fault.kind == "stall" and fault.after_sentences == 0:
            await self._stall(record)  # no first byte: not even the headers
        reply = plan_reply(raw, self.tool_calls, self.tool_answer, len(self.requests))
        if reply is not None:
            text, record.tool_calls = reply.text, reply.calls
        else:
            text = self.answers.popleft() if self.answers else self.answer(record.body)
        record.sentences = split_sentences(text)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        try:
            await asyncio.sleep(self.ttfb_s)
            await response.prepare(request)
            await self._stream(response, record, record.body, fault, request)
        except ConnectionError:
            record.aborted = True  # the client went away mid-stream (barge-in): survive it
        except asyncio.CancelledError:
            record.aborted = True
            raise
        return response

    async def _stall(self, record: RecordedRequest) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            record.aborted = True

    def _error(
        self, record: RecordedRequest, status: int, style: str, message: str
    ) -> web.Response:
        record.status = status
        record.finished = time.monotonic()
        body = ir.error_body("grpc" if style == "grpc" else "openai", status, message)
        return web.json_response(body, status=status)

    async def _stream(
        self,
        response: web.StreamResponse,
        record: RecordedRequest,
        body: ir.ChatRequest,
        fault: RouterFault | None,
        request: web.Request,
    ) -> None:
        cid, model = f"chatcmpl-{len(self.requests)}", body.model
        for index, sentence in enumerate(record.sentences):
            if fault is not None and index == fault.after_sentences:
                await self._fault(fault, request)
                return
            piece = sentence + " "
            if body.audio is None:
                await self._text(response, record, cid, model, piece)
                continue
            await self._write(response, record, ir.transcript_chunk(cid, model, piece, index == 0))
            if index == 1:
                record.first_segment_shown_complete = time.monotonic()
            if self.mirror_content:
                await self._write(response, record, ir.text_chunk(cid, model, piece))
            await self._audio(response, record, cid, model, piece, seed=index)
        if record.first_segment_shown_complete is None:
            record.first_segment_shown_complete = time.monotonic()
        for chunk in tool_call_chunks(cid, model, record.tool_calls):
            await self._write(response, record, chunk)
        finish = ir.finish_chunk(cid, model, usage(record.sentences))
        if record.tool_calls:
            finish["choices"][0]["finish_reason"] = "tool_calls"
        await self._write(response, record, finish)
        await response.write(ir.SSE_DONE)
        await response.write_eof()
        record.finished = time.monotonic()

    async def _audio(
        self, response: web.StreamResponse, record: RecordedRequest, cid: str, model: str,
        text: str, seed: int,
    ) -> None:  # fmt: skip
        total_ms = max(self.audio_chunk_ms, len(text) * self.ms_per_char)
        pcm = sentence_audio(total_ms, seed)
        step = int(self.audio_chunk_ms * 48) * 2
        chunks = [pcm[i : i + step] for i in range(0, len(pcm), step)]
        for chunk in chunks:
            await asyncio.sleep(self.sentence_s / len(chunks))
            await self._write(response, record, ir.audio_chunk(cid, model, chunk))
            if record.first_audio is None:
                record.first_audio = time.monotonic()

    async def _text(
        self, response: web.StreamResponse, record: RecordedRequest, cid: str, model: str, text: str
    ) -> None:
        words = re.findall(r"\S+\s*", text)
        for word in words:
            await asyncio.sleep(self.sentence_s / max(1, len(words)))
            await self._write(response, record, ir.text_chunk(cid, model, word))

    async def _write(
        self, response: web.StreamResponse, record: RecordedRequest, chunk: dict[str, object]
    ) -> None:
        await response.write(ir.sse(chunk))
        if record.first_byte is None:
            record.first_byte = time.monotonic()

    async def _fault(self, fault: RouterFault, request: web.Request) -> None:
        if fault.kind == "stall":
            await self._stall(self.requests[-1])
        elif request.transport is not None:  # drop: cut the connection, no terminating chunk
            request.transport.close()


def main(argv: list[str] | None = None) -> None:
    """Run the fake as a process: `python -m voiceagent.sim.fake_router --port 0 ...`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="test-inworld-key")
    parser.add_argument("--ttfb", type=float, default=0.0, help="seconds to first byte")
    parser.add_argument("--sentence", type=float, default=0.0, help="synthesis s per sentence")
    parser.add_argument("--ms-per-char", type=float, default=50.0)
    args = parser.parse_args(argv)
    fake = FakeRouter(api_key=args.api_key, ttfb_s=args.ttfb, sentence_s=args.sentence,
                      ms_per_char=args.ms_per_char)  # fmt: skip

    async def serve() -> None:
        print(await fake.start(port=args.port), flush=True)
        await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
