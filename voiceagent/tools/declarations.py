"""What the model is told about a number's tools, in each API's shape.

Realtime ``session.update`` takes GA-flat function tools (docs/protocols.md, Inworld §1.3, §1.6):
``{"type":"function","name","description","parameters"}``. The Router takes OpenAI
chat-completions ``tools``: ``{"type":"function","function":{"name","description",
"parameters"}}``. ``transfer_call``'s only parameter is an enum of the configured destination
*names*: the model (and a caller who talks it into anything) can never name a number.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from voiceagent.tools.language import SetLanguageSpec, set_language_parameters
from voiceagent.tools.spec import EndCallSpec, HttpToolSpec, ToolSpec, TransferCallSpec
from voiceagent.tools.turn_taking import SetTurnTakingSpec, set_turn_taking_parameters

AnyTool = ToolSpec | SetLanguageSpec | SetTurnTakingSpec
"""A configured tool, or a built-in made from the number's agent settings (tools/builtins.py)."""

END_CALL_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {},
    "additionalProperties": False,
}


def parameters_of(spec: AnyTool) -> dict[str, Any]:
    """The JSON schema of a tool's arguments (what is declared and what arguments must meet)."""
    if isinstance(spec, HttpToolSpec):
        return spec.parameters
    if isinstance(spec, EndCallSpec):
        return END_CALL_PARAMETERS
    if isinstance(spec, SetLanguageSpec):
        return set_language_parameters(spec)
    if isinstance(spec, SetTurnTakingSpec):
        return set_turn_taking_parameters(spec)
    return transfer_parameters(spec)


def transfer_parameters(spec: TransferCallSpec) -> dict[str, Any]:
    """``{"destination": enum of names}``, each name's description folded into the text."""
    names = list(spec.destinations)
    hints = [f"{n}: {d.description}" for n, d in spec.destinations.items() if d.description]
    text = "Who to transfer the caller to." + (f" Options: {'; '.join(hints)}." if hints else "")
    return {
        "type": "object",
        "properties": {"destination": {"type": "string", "enum": names, "description": text}},
        "required": ["destination"],
        "additionalProperties": False,
    }


def realtime_tools(specs: Iterable[AnyTool]) -> list[dict[str, Any]]:
    """``session.tools`` for Inworld Realtime (GA-flat function tools)."""
    return [
        {
            "type": "function",
            "name": spec.name,
            "description": spec.description,
            "parameters": parameters_of(spec),
        }
        for spec in specs
    ]


def router_tools(specs: Iterable[AnyTool]) -> list[dict[str, Any]]:
    """``tools`` for the Router request (OpenAI chat-completions format)."""
    return [
        {
            "type": "function",
            "function": {
                "name": spec.name,
                "description": spec.description,
                "parameters": parameters_of(spec),
            },
        }
        for spec in specs
    ]
