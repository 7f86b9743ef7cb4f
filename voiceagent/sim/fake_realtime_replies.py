"""The replies of one fake Inworld Realtime session: which response runs, what it says or which
function it calls, its cancellation, and the follow-up after tool outputs.

A reply speaks (audio deltas with their transcript, faster than real time), calls a scripted
function (``fake_tool_calls``), or both: words first, then the call, as real models do. The
session (``fake_realtime_connection.FakeSession``) feeds it client events through ``respond``,
``cancel``, ``on_output`` and ``on_response_create``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Protocol

from voiceagent.protocols._wire import b64encode
from voiceagent.sim.fake_options import FakeRealtimeOptions
from voiceagent.sim.fake_responses import (
    ResponseRecord,
    SessionRecord,
    audio_chunks,
    cancelled_event,
    closing_events,
    message_item,
    opening_events,
    part_fields,
    response_audio,
    response_created,
    response_done,
)
from voiceagent.sim.fake_tool_calls import (
    AUTO_TRIGGER,
    FakeToolState,
    ScriptedToolCall,
    function_call_events,
    function_call_item,
    tool_answer,
)


class SessionSide(Protocol):
    """What the replies need from their session."""

    opts: FakeRealtimeOptions
    record: SessionRecord
    user_texts: list[str]

    def new_id(self, prefix: str) -> str: ...
    async def emit(self, event: dict[str, Any]) -> None: ...
    async def error(self, code: str, message: str) -> None: ...
    async def drop(self, reason: str) -> None: ...


class FakeReplies:
    """At most one response at a time; each is a task streaming its events."""

    def __init__(self, session: SessionSide) -> None:
        self.session = session
        self.opts = session.opts
        self.tools = FakeToolState(self.opts.tool_calls, self.opts.follow_up)
        self.current: ResponseRecord | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        return self.task is not None

    def respond(self, trigger: str, text: str = "") -> None:
        """Start the next reply: to unused tool outputs, else a scripted call, else ``text``."""
        outputs = self.tools.response_started(trigger)
        script = None if outputs else self.tools.tool_for(self.session.user_texts)
        if outputs:
            text = tool_answer(self.opts.tool_answer, outputs, self.opts.tool_calls)
        elif script is not None:
            text = script.say
        new_id = self.session.new_id
        resp = ResponseRecord(new_id("resp"), new_id("item"), text, trigger)
        if script is not None:
            resp.tool_call, resp.call_id, resp.call_item_id = script, new_id("call"), new_id("item")
        self.session.record.responses.append(resp)
        self.current = resp
        self.task = asyncio.get_running_loop().create_task(self._stream(resp))

    async def on_response_create(self, text: str) -> None:
        """A client ``response.create``: refused while a response runs, ignored when the
        automatic follow-up already answered the last outputs, else a reply."""
        if self.active:
            await self.session.error(
                "conversation_already_has_active_response",
                "Conversation already has an active response",
            )
        elif self.tools.ignore_response_create():
            self.session.record.ignored_response_creates += 1
        else:
            self.respond("response.create", text)

    def on_output(self, call_id: str, output: str) -> None:
        """A ``function_call_output`` item: Inworld replies by itself once all are in
        (``follow_up="auto"``), or after the running response if one runs."""
        if self.tools.on_output(call_id, output) and not self.active:
            self.respond(AUTO_TRIGGER)

    async def cancel(self, reason: str) -> None:
        """Stop the running response: ``response.done`` with status cancelled."""
        task, resp = self.task, self.current
        if task is None or resp is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self.task = None
        resp.status = "cancelled"
        await self.session.emit(cancelled_event(resp, reason))

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    # -- streaming -----------------------------------------------------------------------------
    async def _stream(self, resp: ResponseRecord) -> None:
        emit = self.session.emit
        await emit(response_created(resp))
        await asyncio.sleep(self.opts.first_delta_delay_s)
        output = []
        script = resp.tool_call
        if resp.text or script is None:
            await self._speak(resp)
            output.append(message_item(resp))
            if script is not None:
                for event in closing_events(resp):
                    await emit(event)
        if script is not None:
            await self._call_function(resp, script, output_index=len(output))
            output.append(function_call_item(resp.call_item_id or "", resp.call_id or "", script))
        resp.status = "completed"
        self.task = None
        if script is None:
            for event in closing_events(resp):
                await emit(event)
        await emit(response_done(resp, output))
        records = self.session.record.responses
        limit = self.opts.drop_after_responses
        if limit is not None and sum(r.status == "completed" for r in records) >= limit:
            await self.session.drop("fake: dropped after responses")
        elif self.tools.follow_up_due() and not self.active:
            self.respond(AUTO_TRIGGER)  # outputs arrived while this response was running

    async def _speak(self, resp: ResponseRecord) -> None:
        o, emit = self.opts, self.session.emit
        for event in opening_events(resp):
            await emit(event)
        audio_ms = o.response_audio_ms or max(400, 55 * len(resp.text))
        audio = response_audio(audio_ms, len(self.session.record.responses))
        common = part_fields(resp)
        for words, chunk in audio_chunks(resp.text, audio, o.chunk_ms):
            if words:
                await emit(
                    {"type": "response.output_audio_transcript.delta", **common, "delta": words}
                )
            now = time.monotonic()
            await emit({"type": "response.output_audio.delta", **common, "delta": b64encode(chunk)})
            resp.audio_ms_sent += len(chunk) / 8
            if o.record_timing:
                resp.delta_times.append(now)
            if o.chunk_gap_s:
                await asyncio.sleep(o.chunk_gap_s)

    async def _call_function(
        self, resp: ResponseRecord, script: ScriptedToolCall, output_index: int
    ) -> None:
        call_id = resp.call_id or ""
        events = function_call_events(
            resp.id, resp.call_item_id or "", call_id, script, output_index,
            name_on_done=self.opts.function_name_on_done,
        )  # fmt: skip
        for event in events:
            if event["type"] == "response.function_call_arguments.done":
                self.tools.call_made(call_id, script.name)  # before the client can answer it
            await self.session.emit(event)
