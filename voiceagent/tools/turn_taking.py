"""The built-in `set_turn_taking` tool: the agent switches the call to another of the number's
turn-taking presets (`agent.turn_taking`), e.g. a patient one for a caller who pauses a lot.

Declared only when the number lists presets; the model may only name one of them (an enum), and
the result carries a `ChangeTurnTaking` action the call's machine carries out: ConversationRelay's
mid-call `config` message (relay), a partial `session.update` of the semantic VAD eagerness
(realtime). What a platform cannot change mid-call is left as it is, and the tool's output says
what changed.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

from voiceagent.config_knobs import TurnTakingPreset
from voiceagent.protocols import conversation_relay as cr
from voiceagent.protocols import inworld_realtime as rt
from voiceagent.tools.calls import ChangeTurnTaking, ToolCall, ToolOutcome, ToolResult
from voiceagent.tools.choices import choice_parameters, not_a_choice

SET_TURN_TAKING = "set_turn_taking"


class SetTurnTakingSpec(BaseModel):
    """Built-in: switch how the agent takes turns (made from `agent.turn_taking`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Literal["set_turn_taking"] = "set_turn_taking"
    description: str = (
        "Change how you take turns in this call: how long the caller may pause before you "
        "answer and whether they can interrupt you. Use it when the caller needs it."
    )
    presets: tuple[TurnTakingPreset, ...]


def set_turn_taking_parameters(spec: SetTurnTakingSpec) -> dict[str, Any]:
    """`{"preset": enum of the names}`, each with its description."""
    options = [(p.name, p.description) for p in spec.presets]
    return choice_parameters("preset", options, "The way of taking turns to switch to.")


def set_turn_taking_result(spec: SetTurnTakingSpec, call: ToolCall, name: str) -> ToolResult:
    """The `ChangeTurnTaking` action for a listed preset; any other is refused (second lock)."""
    preset = next((p for p in spec.presets if p.name == name), None)
    if preset is None:
        return not_a_choice(call, name, [p.name for p in spec.presets], "preset")
    output = orjson.dumps({"ok": True, "turn_taking": preset.name}).decode()
    return ToolResult(call, ToolOutcome.OK, output, action=ChangeTurnTaking(preset))


def realtime_turn_taking_update(preset: TurnTakingPreset, vad: str) -> str | None:
    """The partial `session.update` of a preset on a call whose turn detection is `vad`: its
    eagerness (semantic VAD only); None when it changes nothing Inworld has."""
    if preset.eagerness is None or vad != "semantic_vad":
        return None
    detection = rt.TurnDetection(
        type="semantic_vad", eagerness=preset.eagerness, create_response=True,
        interrupt_response=True,
    )  # fmt: skip
    session = rt.SessionConfig(audio=rt.AudioConfig(input=rt.AudioInput(turn_detection=detection)))
    return rt.dump(rt.SessionUpdate(session=session))


def relay_turn_taking_config(preset: TurnTakingPreset) -> str | None:
    """ConversationRelay's `config` message for a preset; None when it sets no relay setting."""
    changes = preset.relay_changes()
    if not changes:
        return None
    timeout = changes.pop("speech_timeout_ms", None)
    return cr.dump(cr.Config.model_validate({**changes, "speech_timeout": timeout}))
