"""What the fake Inworld sends for one response: pure builders of the server events, the
response's audio (speech-like µ-law, cached) split into delta chunks with their words, and
the records the fake keeps of each session. No I/O."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from voiceagent.audio import speech_like_ulaw, ulaw_bytes
from voiceagent.sim.energy_vad import VadEvent
from voiceagent.sim.fake_tool_calls import ScriptedToolCall


@dataclass
class ResponseRecord:
    """One response the fake generated."""

    id: str
    item_id: str
    text: str
    trigger: str  # "response.create", "vad" or "function_call_output" (automatic follow-up)
    status: str = "in_progress"
    audio_ms_sent: float = 0.0
    delta_times: list[float] = field(default_factory=list)
    tool_call: ScriptedToolCall | None = None  # a function call after ``text`` (if any)
    call_id: str | None = None
    call_item_id: str | None = None


@dataclass
class SessionRecord:
    """What one session received and did, for assertions and benchmarks."""

    key: str
    opened: float = field(default_factory=time.monotonic)
    closed: float | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    appends: int = 0
    audio_bytes: int = 0
    append_times: list[tuple[float, int]] = field(default_factory=list)
    responses: list[ResponseRecord] = field(default_factory=list)
    vad: list[VadEvent] = field(default_factory=list)
    ignored_response_creates: int = 0  # sent with nothing new after an automatic follow-up
    config: dict[str, Any] = field(default_factory=dict)  # the session after its updates

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        """Received client events of ``kind`` (appends are only counted, not kept)."""
        return [e for e in self.events if e.get("type") == kind]

    def function_outputs(self) -> list[dict[str, Any]]:
        """The ``function_call_output`` items the client sent, in order."""
        items = [e.get("item") or {} for e in self.of_type("conversation.item.create")]
        return [i for i in items if i.get("type") == "function_call_output"]


@lru_cache(maxsize=64)
def response_audio(ms: int, seed: int) -> bytes:
    """Deterministic speech-like µ-law for a response (cached: the same lengths recur)."""
    return speech_like_ulaw(ms, seed=seed)


def audio_chunks(text: str, audio: bytes, chunk_ms: int) -> list[tuple[str, bytes]]:
    """The response's audio in ``chunk_ms`` deltas, each with the words it speaks."""
    step = ulaw_bytes(chunk_ms)
    chunks = [audio[i : i + step] for i in range(0, len(audio), step)]
    return list(zip(spread_text(text, len(chunks)), chunks, strict=True))


def spread_text(text: str, parts: int) -> list[str]:
    """Split ``text`` into ``parts`` pieces at word boundaries (some may be empty)."""
    words = text.split(" ")
    out = [""] * max(parts, 1)
    for index, word in enumerate(words):
        slot = index * len(out) // max(len(words), 1)
        out[slot] += word if index == 0 else " " + word
    return out[:parts] if parts else []


def part_fields(resp: ResponseRecord) -> dict[str, Any]:
    return {"response_id": resp.id, "item_id": resp.item_id, "output_index": 0, "content_index": 0}


def response_created(resp: ResponseRecord) -> dict[str, Any]:
    response = {"id": resp.id, "object": "realtime.response", "status": "in_progress", "output": []}
    return {"type": "response.created", "response": response}


def opening_events(resp: ResponseRecord) -> list[dict[str, Any]]:
    """response.output_item.added and response.content_part.added of the spoken message."""
    item = {
        "id": resp.item_id,
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    return [
        {
            "type": "response.output_item.added",
            "response_id": resp.id,
            "output_index": 0,
            "item": item,
        },
        {
            "type": "response.content_part.added",
            **part_fields(resp),
            "part": {"type": "audio", "transcript": ""},
        },
    ]


def message_item(resp: ResponseRecord) -> dict[str, Any]:
    """The completed spoken message, as ``output_item.done`` and ``response.done`` show it."""
    part = {"type": "audio", "transcript": resp.text}
    return {
        "id": resp.item_id,
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [part],
    }


def closing_events(resp: ResponseRecord) -> list[dict[str, Any]]:
    """The done events of the spoken message (``response_done`` ends the response)."""
    common = part_fields(resp)
    item = message_item(resp)
    part = item["content"][0]
    return [
        {"type": "response.output_audio.done", **common},
        {"type": "response.output_audio_transcript.done", **common, "transcript": resp.text},
        {"type": "response.content_part.done", **common, "part": part},
        {
            "type": "response.output_item.done",
            "response_id": resp.id,
            "output_index": 0,
            "item": item,
        },
    ]


def response_done(resp: ResponseRecord, output: list[dict[str, Any]]) -> dict[str, Any]:
    """response.done of a completed response listing its ``output`` items."""
    return {
        "type": "response.done",
        "response": {
            "id": resp.id,
            "object": "realtime.response",
            "status": "completed",
            "status_details": None,
            "output": output,
            "usage": {"total_tokens": 30, "input_tokens": 20, "output_tokens": 10},
        },
    }


def cancelled_event(resp: ResponseRecord, reason: str) -> dict[str, Any]:
    """response.done with status cancelled (client_cancelled or turn_detected)."""
    return {
        "type": "response.done",
        "response": {
            "id": resp.id,
            "object": "realtime.response",
            "status": "cancelled",
            "status_details": {"type": "cancelled", "reason": reason},
            "output": [],
        },
    }
