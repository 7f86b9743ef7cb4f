"""The ConversationRelay TwiML, asserted as exact XML (twilio passes misspelled attributes)."""

from __future__ import annotations

from voiceagent.config import RelayKnobs
from voiceagent.modes.relay_attributes import relay_attributes
from voiceagent.protocols import twiml

HEAD = '<?xml version="1.0" encoding="UTF-8"?><Response>'
ACTION = "https://h.test/voice/action?mode=relay-router"


def test_inworld_voice_twiml_sets_every_attribute_explicitly() -> None:
    """Default knobs: all STT/interruption attributes explicit, no voice, no greeting."""
    attributes = relay_attributes(RelayKnobs(hints=("Acme", "invoice")), None)
    xml = twiml.conversation_relay(
        "wss://h.test/conversation", ACTION, attributes,
        {"number": "+18005550102", "arm": "b", "mode": "relay-router"},
    )  # fmt: skip
    assert xml == (
        HEAD + f'<Connect action="{ACTION}" method="POST">'
        '<ConversationRelay applicationReconnect="true" dtmfDetection="true" hints="Acme,invoice"'
        ' interruptSensitivity="high"'
        ' interruptible="any" language="en-US" reportInputDuringAgentSpeech="speech"'
        ' speechModel="nova-3-general" transcriptionProvider="Deepgram"'
        ' url="wss://h.test/conversation">'
        '<Parameter name="number" value="+18005550102" /><Parameter name="arm" value="b" />'
        '<Parameter name="mode" value="relay-router" />'
        "</ConversationRelay></Connect></Response>"
    )


def test_twilio_voice_and_greeting_twiml() -> None:
    """voice_source twilio names the provider and voice; a Twilio greeting is welcomeGreeting."""
    knobs = RelayKnobs(
        voice_source="twilio", greeting_source="twilio", interruptible="speech",
        dtmf_detection=False, tts_provider="Amazon", twilio_voice="Joanna-Neural",
        transcription_provider="Google", speech_model="telephony", language="en-GB",
        interrupt_sensitivity="low", report_input_during_agent_speech="none",
    )  # fmt: skip
    attributes = relay_attributes(knobs, "Hi & welcome")
    xml = twiml.conversation_relay("wss://h.test/conversation", ACTION, attributes, {})
    assert xml == (
        HEAD + f'<Connect action="{ACTION}" method="POST">'
        '<ConversationRelay applicationReconnect="true" dtmfDetection="false"'
        ' interruptSensitivity="low"'
        ' interruptible="speech" language="en-GB" reportInputDuringAgentSpeech="none"'
        ' speechModel="telephony" transcriptionProvider="Google" ttsProvider="Amazon"'
        ' url="wss://h.test/conversation" voice="Joanna-Neural"'
        ' welcomeGreeting="Hi &amp; welcome" welcomeGreetingInterruptible="speech" />'
        "</Connect></Response>"
    )
