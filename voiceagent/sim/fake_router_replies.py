"""The fake Router's data and pure logic: the faults a test queues, the record of each request,
and what an answer says (the default answer, its sentences, their speech audio, the usage the
finish chunk reports). No I/O; the server (``fake_router``) streams it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from voiceagent.audio import speech_like_pcm16
from voiceagent.protocols import inworld_router as ir
from voiceagent.sim.fake_router_tools import raw_messages
from voiceagent.tools.calls import ToolCall

GREETING_MARKER = "Repeat the following greeting exactly as given."
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True, slots=True)
class RouterFault:
    """A fault for one request: `http` error, `stall` (forever) or `drop` (connection cut).

    `after_sentences` = 0 stalls before the first byte; n > 0 after n whole sentences.
    """

    kind: Literal["http", "stall", "drop"]
    status: int = 500
    style: Literal["openai", "grpc"] = "openai"
    message: str = "upstream model failed"
    after_sentences: int = 0


@dataclass(slots=True)
class RecordedRequest:
    """One request as received, with the times (monotonic s) the stream reached milestones."""

    authorization: str
    body: ir.ChatRequest | None
    raw: bytes
    received: float
    status: int = 200
    first_byte: float | None = None
    first_audio: float | None = None
    first_segment_shown_complete: float | None = None
    finished: float | None = None
    aborted: bool = False
    sentences: list[str] = field(default_factory=list)
    tool_calls: tuple[ToolCall, ...] = ()  # the calls this answer made

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The messages as sent (``tool_calls`` / ``tool_call_id`` included when present)."""
        return raw_messages(self.raw) if self.body is not None else []


def derived_answer(request: ir.ChatRequest) -> str:
    """The default answer: the greeting repeated, else a two-sentence echo of the last input."""
    system = next((m.content or "" for m in request.messages if m.role == "system"), "")
    last_user = next((m.content or "" for m in reversed(request.messages) if m.role == "user"), "")
    if system == GREETING_MARKER:
        return last_user
    return f"You said: {last_user.strip().rstrip('.?!')}. Is there anything else I can do?"


def split_sentences(text: str) -> list[str]:
    """The sentences of an answer, each streamed with its own audio."""
    return [s for s in _SENTENCE.split(text.strip()) if s]


@functools.lru_cache(maxsize=512)
def sentence_audio(total_ms: float, seed: int) -> bytes:
    """Speech-like 48 kHz PCM16 for a sentence (cached: the same lengths recur)."""
    return speech_like_pcm16(total_ms, seed=seed)


def usage(sentences: Sequence[str]) -> dict[str, int]:
    """The token usage the finish chunk reports (about four characters a token)."""
    chars = sum(map(len, sentences))
    return {
        "prompt_tokens": 20,
        "completion_tokens": chars // 4,
        "total_tokens": 20 + chars // 4,
    }


def timelines(requests: Sequence[RecordedRequest]) -> list[dict[str, Any]]:
    """The recorded timelines as JSON rows (for a benchmark running the fake as a process)."""
    return [
        {"messages": r.messages, "status": r.status, "received": r.received,
         "first_byte": r.first_byte, "first_audio": r.first_audio,
         "first_segment_shown_complete": r.first_segment_shown_complete,
         "finished": r.finished, "aborted": r.aborted}
        for r in requests
    ]  # fmt: skip
