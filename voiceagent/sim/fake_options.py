"""Knobs of the fake Inworld Realtime server: script, delays, VAD and fault injection.

Mutable on purpose: a test may change them between calls (e.g. refuse the next upgrade).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from voiceagent.sim.fake_tool_calls import FollowUp, ScriptedToolCall


@dataclass
class FakeRealtimeOptions:
    """How the fake behaves. Delays are seconds; audio lengths are milliseconds."""

    api_key: str = "fake-inworld-key"
    # script: what the caller "said" (else "utterance N") and what the agent answers
    transcripts: tuple[str, ...] = ()
    call_transcripts: dict[str, tuple[str, ...]] = field(default_factory=dict)  # by CallSid
    answers: tuple[str, ...] = (
        "Sure, I can help with that.",
        "Let me check that for you.",
        "Is there anything else I can do?",
    )
    response_audio_ms: int | None = None  # None: about 55 ms per character of the answer
    # tools: caller words → a function call (of a declared tool), and the reply to its output
    tool_calls: tuple[ScriptedToolCall, ...] = ()
    follow_up: FollowUp = "auto"  # Inworld now; "response_create": wait for it (older servers)
    function_name_on_done: bool = True  # False: leave `name` off arguments.done, as Inworld may
    tool_answer: str = "Here is what I found: {output}"  # {name}, {output}
    # streaming: faster than real time, in chunks
    first_delta_delay_s: float = 0.05
    chunk_ms: int = 100
    chunk_gap_s: float = 0.02
    # energy VAD on the received audio
    vad_threshold_dbfs: float = -40.0
    vad_start_ms: int = 60
    vad_hangover_ms: int = 400
    # fault injection
    refuse_status: int | None = None  # answer the upgrade with this HTTP status
    max_sessions: int | None = None  # concurrent-session cap
    over_capacity: Literal["frame", "refuse"] = "frame"  # untyped frame + close, or HTTP 429
    drop_after_s: float | None = None  # close the socket this long after the upgrade
    drop_after_responses: int | None = None  # close once this many responses are done
    drop_mid_reply: int | None = None  # kill the socket after the first audio of response N
    drop_sessions: int | None = None  # ... in the first N sessions opened only (None: all)
    refuse_after_sessions: int | None = None  # refuse upgrades (503) once N sessions opened
    connect_delay_s: float = 0.0  # hold each upgrade after the first session (slow reconnect)
    error_after_update: dict[str, Any] | None = None  # an `error` event after session.updated
    untyped_after_update: bool = False  # frames with no `type` after session.updated
    # recording
    record_timing: bool = False  # per-append and per-delta monotonic times (benchmarks)
