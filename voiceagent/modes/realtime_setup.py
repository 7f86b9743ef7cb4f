"""The number's agent as Inworld Realtime frames: the one `session.update` and the greeting.

This is where config meets the wire (the codecs in `protocols/` never import config).
"""

from __future__ import annotations

from typing import Any

from voiceagent.config import CallPlan
from voiceagent.protocols import inworld_realtime as rt
from voiceagent.tools.builtins import with_builtins
from voiceagent.tools.declarations import realtime_tools

ULAW = "g711_ulaw"
"""The session's audio format both ways: Inworld's own Twilio example uses the legacy string."""


def session_update(plan: CallPlan) -> str:
    """The one `session.update` of a call: µ-law both ways and the number's agent (with its
    tools, when it has any)."""
    agent = plan.agent
    tools = with_builtins(agent)
    td = agent.turn_detection
    turn_detection = (
        None
        if td.type == "none"
        else rt.TurnDetection(
            type=td.type, eagerness=td.eagerness, create_response=True, interrupt_response=True
        )
    )
    audio_in = rt.AudioInput(
        format=ULAW,
        transcription=rt.TranscriptionConfig(
            model=agent.transcription_model, language=_first(plan.realtime.stt_language_hints)
        ),
        turn_detection=turn_detection,
    )
    session = rt.SessionConfig(
        model=agent.llm_model,
        instructions=agent.instructions,
        output_modalities=["audio", "text"],
        temperature=agent.temperature,
        audio=rt.AudioConfig(
            input=audio_in,
            output=rt.AudioOutput(format=ULAW, model=agent.tts_model, voice=agent.voice),
        ),
        tools=realtime_tools(tools) if tools else None,
        provider_data=provider_data(plan) or None,
    )
    return rt.dump(rt.SessionUpdate(session=session))


def provider_data(plan: CallPlan) -> dict[str, Any]:
    """Inworld's `providerData` of the number's knobs: back-channel, fillers and STT language
    hints (docs/protocol-updates-2026.md); empty when none is set (Inworld's defaults)."""
    knobs, data = plan.realtime, {}
    if knobs.backchannel is not None:
        data["backchannel"] = knobs.backchannel.model_dump()
    if knobs.responsiveness is not None:
        data["responsiveness"] = knobs.responsiveness.model_dump()
    if knobs.stt_language_hints:
        data["stt"] = {"language_hints": list(knobs.stt_language_hints)}
    return data


def _first(values: tuple[str, ...]) -> str | None:
    return values[0] if values else None


def greeting_instruction(greeting: str) -> str:
    """The user-side text that makes the agent open the call with the configured greeting."""
    return f'The phone call has just been answered. Greet the caller by saying: "{greeting}"'


def voicemail_frames(message: str) -> tuple[str, str]:
    """The frames of a voicemail leg: the message, word for word, as the one response."""
    words = message.replace('"', "'")
    text = ("An answering machine took the call and its beep has sounded. Leave this voicemail "
            f'message word for word and say nothing else: "{words}"')  # fmt: skip
    item = rt.ConversationItemCreate(item=rt.Item.user_text(text))
    return rt.dump(item), rt.dump(rt.ResponseCreate())


def greeting_frames(plan: CallPlan) -> tuple[str, str]:
    """`conversation.item.create` with the greeting instruction, then `response.create`."""
    item = rt.ConversationItemCreate(
        item=rt.Item.user_text(greeting_instruction(plan.agent.greeting))
    )
    return rt.dump(item), rt.dump(rt.ResponseCreate())
