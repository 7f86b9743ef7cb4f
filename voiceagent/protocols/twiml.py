"""TwiML documents, built with the twilio library (no I/O).

twilio-python passes unknown attributes through silently, so tests assert the serialized XML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from twilio.twiml.voice_response import Connect, VoiceResponse


def stream(url: str, action_url: str, parameters: Mapping[str, str]) -> str:
    """`<Connect action><Stream url>` with `<Parameter>`s (Stream URLs take no query string)."""
    response = VoiceResponse()
    connect: Connect = response.connect(action=action_url, method="POST")
    element = connect.stream(url=url)
    _add_parameters(element, parameters)
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


def pause_redirect(seconds: int, url: str) -> str:
    """Silence for ``seconds``, then fetch new TwiML from ``url`` (POST)."""
    response = VoiceResponse()
    response.pause(length=seconds)
    response.redirect(url, method="POST")
    return str(response)


def hangup() -> str:
    """End the call now, saying nothing."""
    response = VoiceResponse()
    response.hangup()
    return str(response)


def empty() -> str:
    """An empty response: Twilio goes on with the call (after `<Connect>`: hangs up)."""
    return str(VoiceResponse())


def conversation_relay(
    url: str,
    action_url: str,
    attributes: Mapping[str, str | bool],
    parameters: Mapping[str, str],
    failover: Sequence[Mapping[str, str]] = (),
    languages: Sequence[Mapping[str, str]] = (),
) -> str:
    """`<Connect action><ConversationRelay url>` with the given attributes (twilio-python's
    snake_case names, e.g. `report_input_during_agent_speech`) and `<Parameter>`s; `failover`
    writes `<Failover>` with one `<Language>` of backup providers per entry (its layout is
    inferred: docs/protocol-updates-2026.md); `languages` one `<Language>` per entry."""
    response = VoiceResponse()
    connect: Connect = response.connect(action=action_url, method="POST")
    element = connect.conversation_relay(url=url, **attributes)
    _add_parameters(element, parameters)
    for language in languages:  # `<Language code …>`: what a `language` message switches to
        element.language(**language)
    if failover:
        backups = element.add_child("Failover")
        for language in failover:
            backups.add_child("Language", **language)
    return str(response)


def _add_parameters(element: Any, parameters: Mapping[str, str]) -> None:
    for name, value in parameters.items():
        if len(name) + len(value) >= 500:
            raise ValueError(f"<Parameter> {name!r} is too long for Twilio (limit 500 chars)")
        element.parameter(name=name, value=value)
