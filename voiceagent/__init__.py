"""voiceagent: answer Twilio calls with an Inworld voice agent, per number, in one of two modes."""

__version__ = "0.1.0"
