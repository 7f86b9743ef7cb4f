"""The built-in `set_language` tool: the agent switches the call to another of the number's
languages (`agent.languages`), each with its voices and STT settings.

Declared only when the number lists languages; the model may only name one of their codes (an
enum), and the result carries a `SwitchLanguage` action the mode carries out: ConversationRelay's
`language` message and the Router voice (relay), a partial `session.update` (realtime).
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

from voiceagent.config_knobs import LanguageChoice
from voiceagent.protocols import inworld_realtime as rt
from voiceagent.tools.calls import SwitchLanguage, ToolCall, ToolOutcome, ToolResult
from voiceagent.tools.choices import choice_parameters, not_a_choice

SET_LANGUAGE = "set_language"


class SetLanguageSpec(BaseModel):
    """Built-in: switch the call's language (made from `agent.languages`, not written in YAML)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Literal["set_language"] = "set_language"
    description: str = (
        "Switch the language you speak and listen in. Use it as soon as the caller speaks, "
        "or asks for, one of the listed languages; then answer in that language."
    )
    languages: tuple[LanguageChoice, ...]


def set_language_parameters(spec: SetLanguageSpec) -> dict[str, Any]:
    """`{"language": enum of the codes}`, each with its name in the description."""
    options = [(c.code, c.label) for c in spec.languages]
    return choice_parameters("language", options, "The language to switch to.")


def set_language_result(spec: SetLanguageSpec, call: ToolCall, code: str) -> ToolResult:
    """The `SwitchLanguage` action for an allowed code; any other is refused (second lock)."""
    choice = next((c for c in spec.languages if c.code == code), None)
    if choice is None:
        return not_a_choice(call, code, [c.code for c in spec.languages], "language")
    output = orjson.dumps(
        {"ok": True, "language": code, "message": f"Now speak {choice.label} only."}
    ).decode()
    action = SwitchLanguage(code, choice.voice, choice.stt_language_hints)
    return ToolResult(call, ToolOutcome.OK, output, action=action)


def realtime_language_update(action: SwitchLanguage) -> str:
    """The partial `session.update` of a switch: the voice, the STT language and its hints
    (both the OpenAI field and `providerData.stt`: docs/protocol-updates-2026.md)."""
    hints = list(action.stt_language_hints) or [action.code]
    session = rt.SessionConfig(
        audio=rt.AudioConfig(
            input=rt.AudioInput(transcription=rt.TranscriptionConfig(language=action.code)),
            output=rt.AudioOutput(voice=action.voice) if action.voice else None,
        ),
        provider_data={"stt": {"language_hints": hints}},
    )
    return rt.dump(rt.SessionUpdate(session=session))
