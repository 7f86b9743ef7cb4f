"""A relay call's live conversation, checkpointed after every event for ConversationRelay's
`applicationReconnect`: when Twilio reconnects a dropped socket (maybe to another instance,
maybe after this one crashed), the new socket's leg resumes from it.

`leg` names the leg that wrote it (its `attempt` / `failover_from` parameters): only a socket of
the same leg resumes it. `answered` holds fingerprints of the newest caller inputs handled, so
inputs Twilio replays after the reconnect are recognised; `pending` is the fingerprint of an
input whose reply had not finished when the checkpoint was written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

import orjson

from voiceagent.logging import get_logger

log = get_logger("voiceagent.store")

CHECKPOINT_TTL_S: Final = 600.0
ANSWERED_KEPT: Final = 16

Message = dict[str, Any]

NEWER_CHECKPOINT_SCRIPT: Final = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, fields = pcall(cjson.decode, current)
  if ok and type(fields) == 'table' and tonumber(fields['r']) ~= nil
     and tonumber(fields['r']) > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
"""
"""SET the checkpoint unless the stored one comes from a later leg (more reconnects)."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a reconnected leg needs to carry on (see the module docstring)."""

    leg: str
    history: tuple[Message, ...] = ()
    answered: tuple[str, ...] = ()
    pending: str | None = None
    reconnects: int = 0
    inputs: int = 0
    language: str | None = None  # the code `set_language` switched to last (its Router voice)


def fingerprint(kind: str, value: str, seq: int) -> str:
    """A short digest of one caller input and how many inputs of the call came before it (so
    a caller who says "yes" twice gives two fingerprints; never the text itself)."""
    return hashlib.sha256(f"{seq}\0{kind}\0{value}".encode()).hexdigest()[:16]


def dump_checkpoint(checkpoint: Checkpoint) -> bytes:
    return orjson.dumps(
        {
            "l": checkpoint.leg,
            "h": list(checkpoint.history),
            "a": list(checkpoint.answered[-ANSWERED_KEPT:]),
            "p": checkpoint.pending,
            "r": checkpoint.reconnects,
            "i": checkpoint.inputs,
            "g": checkpoint.language,
        }
    )


def load_checkpoint(data: bytes) -> Checkpoint | None:
    """The checkpoint `dump_checkpoint` wrote; None (logged) if it is unreadable."""
    try:
        fields = orjson.loads(data)
        history = tuple(fields["h"])
        if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in history):
            raise TypeError("history messages need a role")
        answered = tuple(str(a) for a in fields["a"])[-ANSWERED_KEPT:]
        pending, language = fields["p"], fields.get("g")
        return Checkpoint(
            leg=str(fields["l"]),
            history=history,
            answered=answered,
            pending=None if pending is None else str(pending),
            reconnects=int(fields["r"]),
            inputs=int(fields["i"]),
            language=None if language is None else str(language)[:40],
        )
    except (ValueError, KeyError, TypeError) as exc:
        log.error("call_checkpoint_unreadable", error=type(exc).__name__)
        return None
