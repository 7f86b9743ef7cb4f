"""TwiML documents, built with the twilio library (no I/O).

twilio-python passes unknown attributes through silently, so tests assert the serialized XML.
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import Connect, VoiceResponse

from voiceagent.config import RelayKnobs


def stream(url: str, action_url: str, parameters: Mapping[str, str]) -> str:
    """`<Connect action><Stream url>` with `<Parameter>`s (Stream URLs take no query string)."""
    response = VoiceResponse()
    connect: Connect = response.connect(action=action_url, method="POST")
    element = connect.stream(url=url)
    for name, value in parameters.items():
        if len(name) + len(value) >= 500:
            raise ValueError(f"<Parameter> {name!r} is too long for Twilio (limit 500 chars)")
        element.parameter(name=name, value=value)
    return str(response)


def say_hangup(message: str) -> str:
    """A short spoken message, then hang up."""
    response = VoiceResponse()
    if message:
        response.say(message)
    response.hangup()
    return str(response)


def dial(number: str, message: str = "") -> str:
    """Optionally say something, then connect the caller to `number`."""
    response = VoiceResponse()
    if message:
        response.say(message)
    response.dial(number)
    return str(response)


def empty() -> str:
    """An empty response: Twilio goes on with the call (after `<Connect>`: hangs up)."""
    return str(VoiceResponse())


def conversation_relay(
    url: str,
    action_url: str,
    relay: RelayKnobs,
    parameters: Mapping[str, str],
    welcome_greeting: str | None = None,
) -> str:
    """`<Connect action><ConversationRelay url>` with every setting explicit (twilio.md §2.1).

    Twilio changed several defaults in 2025 (provider, reportInputDuringAgentSpeech) and they
    depend on the account's age, so nothing is left to them. The ConversationRelay voice is
    named only when it speaks (`voice_source: twilio`); `welcome_greeting` only when Twilio
    speaks the greeting.
    """
    response = VoiceResponse()
    connect: Connect = response.connect(action=action_url, method="POST")
    attributes: dict[str, str | bool] = {
        "language": relay.language,
        "transcription_provider": relay.transcription_provider,
        "speech_model": relay.speech_model,
        "interruptible": relay.interruptible,
        "interrupt_sensitivity": relay.interrupt_sensitivity,
        "report_input_during_agent_speech": relay.report_input_during_agent_speech,
        "dtmf_detection": relay.dtmf_detection,
    }
    if relay.hints:
        attributes["hints"] = ",".join(relay.hints)
    if relay.voice_source == "twilio":
        attributes["tts_provider"] = relay.tts_provider
        attributes["voice"] = relay.twilio_voice
    if welcome_greeting:
        attributes["welcome_greeting"] = welcome_greeting
        attributes["welcome_greeting_interruptible"] = relay.interruptible
    element = connect.conversation_relay(url=url, **attributes)
    for name, value in parameters.items():
        if len(name) + len(value) >= 500:
            raise ValueError(f"<Parameter> {name!r} is too long for Twilio (limit 500 chars)")
        element.parameter(name=name, value=value)
    return str(response)
