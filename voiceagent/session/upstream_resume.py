"""What a new Inworld Realtime session needs to carry a dropped one's call on. No I/O.

A Realtime session cannot be resumed (docs/protocol-updates-2026.md), so its replacement gets
the same `session.update`, then the conversation as heard so far as `conversation.item.create`
message items (user `input_text`, assistant `output_text`; tool rounds are left out: their
call ids belong to the dead session), newest last and bounded. A reply cut by the drop is left
out too and asked for again (`response.create`); the part of it the caller heard is cleared on
Twilio's side so the new reply does not overlap it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

from voiceagent.config_knobs import UpstreamReconnect
from voiceagent.protocols import inworld_realtime as rt
from voiceagent.protocols import twilio_media as tm
from voiceagent.session.realtime_call import RealtimeCall

REPLAY_MAX_MESSAGES: Final = 30
REPLAY_MAX_CHARS: Final = 12_000


def replay_items(messages: Sequence[dict[str, Any]], *, cut_reply: bool) -> list[str]:
    """`conversation.item.create` frames for the conversation as heard (see the module
    docstring); `cut_reply` drops a trailing assistant message (the reply the drop cut)."""
    texts = [
        (m["role"], m["content"])
        for m in messages
        if m.get("role") in ("user", "assistant")
        and isinstance(m.get("content"), str) and m["content"] and not m.get("tool_calls")
    ]  # fmt: skip
    if cut_reply and texts and texts[-1][0] == "assistant":
        texts.pop()
    kept: list[tuple[str, str]] = []
    room = REPLAY_MAX_CHARS
    for role, text in reversed(texts[-REPLAY_MAX_MESSAGES:]):
        if len(text) > room:
            break
        kept.append((role, text))
        room -= len(text)
    return [rt.dump(rt.ConversationItemCreate(item=_item(role, text))) for role, text in kept[::-1]]


def _item(role: str, text: str) -> rt.Item:
    if role == "user":
        return rt.Item.user_text(text)
    return rt.Item(type="message", role="assistant",
                   content=[rt.ContentPart(type="output_text", text=text)])  # fmt: skip


def machine_replaced(machine: RealtimeCall) -> tuple[list[str], list[str]]:
    """Tell the call's machine its session was replaced: (frames for Twilio, frames for the new
    session after its replay). A reply in flight is cut where the caller's heard it (Twilio
    `clear`) and asked for again; a reconnect gap starts for the filler."""
    active = machine.active_response is not None
    machine.active_response = None
    machine.pending_text = ""
    machine.capacity_signal = None
    if machine.filler is not None:
        machine.filler.gap_started(reply_owed=active)
    if not active:
        return [], []
    machine.tracker.speech_started()  # what was heard stays in the history, the rest is cut
    return [tm.dump_clear(machine.call.stream_sid)], [rt.dump(rt.ResponseCreate())]


def backoff_delays(knobs: UpstreamReconnect) -> Iterator[float]:
    """Seconds to wait before each attempt: none before the first (a drop is usually one
    socket, not Inworld), then `backoff_ms`, doubling, at most a second."""
    delay = knobs.backoff_ms / 1000
    for attempt in range(knobs.attempts):
        yield 0.0 if attempt == 0 else delay
        if attempt:
            delay = min(delay * 2, 1.0)
