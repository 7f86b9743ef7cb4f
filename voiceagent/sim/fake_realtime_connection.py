"""One session of the fake Inworld Realtime server: what it does with each client event.

Behaves as docs/protocols.md, Inworld §1 describes: one ``session.updated`` per ``session.update``
(or an ``invalid_value`` error for an unknown transcription model, update not applied), an energy
VAD on the audio it receives, transcription events, responses streamed as audio deltas
faster than real time, ``response.cancel``, ``conversation.item.truncate`` and server-side
``interrupt_response``. Scripted function calls and their follow-up replies are described in
``fake_tool_calls``. Everything received is recorded in a ``SessionRecord``. The config, the
script and the events of a caller's turn are built in ``fake_session_events``.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from voiceagent.errors import ProtocolError
from voiceagent.protocols import inworld_realtime as rt
from voiceagent.sim import fake_session_events as ev
from voiceagent.sim.energy_vad import EnergyVad
from voiceagent.sim.fake_options import FakeRealtimeOptions
from voiceagent.sim.fake_realtime_replies import FakeReplies
from voiceagent.sim.fake_responses import SessionRecord
from voiceagent.sim.fake_session_events import TRANSCRIPTION_MODELS

__all__ = ["TRANSCRIPTION_MODELS", "FakeSession"]


class FakeSession:
    """The server side of one Realtime WebSocket."""

    def __init__(self, ws: web.WebSocketResponse, record: SessionRecord, opts: FakeRealtimeOptions):
        self.ws = ws
        self.record = record
        self.opts = opts
        self.config: dict[str, Any] = ev.default_config()
        self.configured = False
        self.vad: EnergyVad | None = None
        self.pre_audio = bytearray()
        self.user_texts: list[str] = []
        self.turns = 0
        self._ids = 0
        self.replies = FakeReplies(self)
        self.may_drop = True  # drop_mid_reply applies to this session
        self.tools = self.replies.tools

    # -- helpers --------------------------------------------------------------------------------
    def new_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}_{self._ids}"

    async def emit(self, event: dict[str, Any]) -> None:
        if self.ws.closed:
            return
        event.setdefault("event_id", self.new_id("evt"))
        await self.ws.send_str(orjson.dumps(event).decode())

    async def emit_raw(self, frame: dict[str, Any]) -> None:
        """Send a frame as-is (no ``event_id``): untyped frames, fault injection."""
        if not self.ws.closed:
            await self.ws.send_str(orjson.dumps(frame).decode())

    async def error(
        self, code: str, message: str, param: str | None = None, kind: str = "invalid_request_error"
    ) -> None:
        await self.emit(ev.error_event(code, message, param, kind))

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        td: dict[str, Any] | None = self.config["audio"]["input"].get("turn_detection")
        return td

    # -- dispatch -------------------------------------------------------------------------------
    async def handle(self, raw: str) -> None:
        if raw.startswith('{"type":"input_audio_buffer.append"'):  # hot path, no model
            try:
                await self.on_append(ev.append_audio(raw))
            except ProtocolError as exc:
                await self.error("invalid_value", str(exc)[:200], "audio")
            return
        try:
            event = rt.parse_client_event(raw)
        except ProtocolError as exc:
            await self.error("invalid_event", str(exc)[:300])
            return
        if isinstance(event, rt.InputAudioBufferAppend):
            try:
                await self.on_append(event.audio_bytes())
            except ProtocolError as exc:
                await self.error("invalid_value", str(exc)[:200], "audio")
            return
        self.record.events.append(orjson.loads(raw))
        if isinstance(event, rt.SessionUpdate):
            await self.on_session_update(orjson.loads(raw)["session"])
        elif isinstance(event, rt.ConversationItemCreate):
            await self.on_item_create(event)
        elif isinstance(event, rt.ResponseCreate):
            await self.on_response_create()
        elif isinstance(event, rt.ResponseCancel):
            await self.on_response_cancel()
        elif isinstance(event, rt.ConversationItemTruncate):
            await self.on_truncate(event)
        elif isinstance(event, rt.InputAudioBufferCommit):
            await self.end_user_turn(self.vad.position_ms if self.vad else 0)
        elif isinstance(event, rt.InputAudioBufferClear):
            await self.emit({"type": "input_audio_buffer.cleared"})

    async def on_session_update(self, session: dict[str, Any]) -> None:
        model = ev.transcription_model(session)
        if model is not None and model not in TRANSCRIPTION_MODELS:
            await self.error(
                "invalid_value",
                f"unknown transcription model {model!r}",
                "session.audio.input.transcription.model",
            )
            return
        ev.merge_config(self.config, session)
        self.tools.on_session_tools(self.config.get("tools"))
        if self.vad is None or "format" in ((session.get("audio") or {}).get("input") or {}):
            self._configure_vad()
        self.configured = True
        self.record.config = orjson.loads(orjson.dumps(self.config))  # as session.updated says
        await self.emit(
            {"type": "session.updated", "session": {"id": self.record.key, **self.config}}
        )
        if self.opts.untyped_after_update:
            await self.emit_raw({"note": "a frame with no type"})
            await self.emit_raw({"errorType": "SOMETHING_ELSE"})
        if self.opts.error_after_update is not None:
            await self.emit({"type": "error", "error": dict(self.opts.error_after_update)})

    def _configure_vad(self) -> None:
        ulaw, rate = ev.vad_format(self.config)
        position = self.vad.position_ms if self.vad else 0
        o = self.opts
        self.vad = EnergyVad(
            o.vad_threshold_dbfs, o.vad_start_ms, o.vad_hangover_ms, ulaw=ulaw, rate=rate
        )
        self.vad.position_ms = position

    async def on_append(self, audio: bytes) -> None:
        rec = self.record
        rec.appends += 1
        rec.audio_bytes += len(audio)
        if self.opts.record_timing:
            rec.append_times.append((time.monotonic(), len(audio)))
        if self.vad is None:  # before any session.update: interpreted once the format is known
            self.pre_audio += audio
            return
        if self.pre_audio:
            audio, self.pre_audio = bytes(self.pre_audio) + audio, bytearray()
        if self.turn_detection is None:
            self.vad.feed(audio)  # manual mode: track position only, no VAD events
            return
        for boundary in self.vad.feed(audio):
            rec.vad.append(boundary)
            if boundary.kind == "started":
                await self.on_speech_started(boundary.ms)
            else:
                await self.end_user_turn(boundary.ms)

    async def on_speech_started(self, ms: int) -> None:
        await self.emit(ev.speech_started(f"item_user_{self.turns + 1}", ms))
        td = self.turn_detection or {}
        if self.replies.active and td.get("interrupt_response", True):
            await self.replies.cancel("turn_detected")

    async def end_user_turn(self, ms: int) -> None:
        self.turns += 1
        item_id = f"item_user_{self.turns}"
        text = ev.caller_transcript(self.opts, self.record.key, self.turns)
        if self.turn_detection is not None:
            await self.emit(ev.speech_stopped(item_id, ms))
        await self.emit(ev.committed(item_id))
        await self.emit(ev.transcription_completed(item_id, text))
        self.user_texts.append(text)
        self.tools.on_user_text()
        td = self.turn_detection
        if td is not None and td.get("create_response", True) and not self.replies.active:
            self.replies.respond("vad", self.answer())

    def answer(self) -> str:
        return ev.agent_answer(self.opts, self.turns)

    async def on_item_create(self, event: rt.ConversationItemCreate) -> None:
        item = event.item
        text = " ".join(p.text or "" for p in item.content or [] if p.type == "input_text")
        if text:
            self.user_texts.append(text)
            self.tools.on_user_text()
        item_id = item.id or self.new_id("item")
        await self.emit(
            {
                "type": "conversation.item.added",
                "previous_item_id": None,
                "item": {"id": item_id, **item.model_dump(exclude_none=True, exclude={"id"})},
            }
        )
        if item.type == "function_call_output":
            self.replies.on_output(item.call_id or "", item.output or "")

    async def on_response_create(self) -> None:
        last = self.user_texts[-1] if self.user_texts else ""
        quoted = ev.quoted(last)
        await self.replies.on_response_create(quoted if quoted is not None else self.answer())

    async def on_response_cancel(self) -> None:
        if not self.replies.active:
            await self.error(
                "response_cancel_not_active", "Cancellation failed: no active response"
            )
            return
        await self.replies.cancel("client_cancelled")

    async def on_truncate(self, event: rt.ConversationItemTruncate) -> None:
        sent = next(
            (r.audio_ms_sent for r in self.record.responses if r.item_id == event.item_id), None
        )
        if sent is None or event.audio_end_ms > sent + 1:
            await self.error(
                "invalid_value", "audio_end_ms is beyond the item's audio", "audio_end_ms"
            )
            return
        await self.emit(ev.truncated(event))

    async def drop(self, reason: str) -> None:
        """Cut the socket (fault injection)."""
        await self.ws.close(code=1011, message=reason.encode())

    async def close(self) -> None:
        await self.replies.close()
