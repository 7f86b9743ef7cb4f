"""The relay-router rules as a state machine: ConversationRelay messages in, commands out.
No sockets, no event loop."""

from __future__ import annotations

import orjson
import pytest

from voiceagent.errors import ProtocolError
from voiceagent.protocols import conversation_relay as cr
from voiceagent.session.call import CallSession, EndReason
from voiceagent.session.commands import AbortStream, ReportTurns, SendPhone, StartReply, StopCall
from voiceagent.session.relay_call import GREETING_INSTRUCTIONS, RelayCall


def _machine() -> RelayCall:
    call = CallSession(call_sid="CA1", number="+18005550102", mode="relay-router")
    return RelayCall(call, instructions="Be brief.", dtmf_template="Key {digit}.",
                     apology="Sorry, a glitch.")  # fmt: skip


def _prompt(text: str, last: bool = True) -> cr.Prompt:
    return cr.Prompt(voice_prompt=text, last=last)


def test_greeting_is_a_reply_in_the_agents_voice() -> None:
    """The greeting is one reply asking the model to repeat it, timed from the call start."""
    m = _machine()
    [start] = m.greet("Hello there!")
    assert isinstance(start, StartReply) and start.greeting
    assert start.messages[0]["content"] == GREETING_INSTRUCTIONS
    assert start.messages[1] == {"role": "user", "content": "Hello there!"}
    assert m.call.latency.turns[0].kind == "greeting"


def test_final_prompt_starts_a_reply_with_the_whole_history() -> None:
    """Only a final prompt starts a reply; it carries the system prompt and the history."""
    m = _machine()
    assert m.receive_phone(_prompt("par", last=False), 1.0) == []
    commands = m.receive_phone(_prompt("What are your hours?"), 1.0)
    assert isinstance(commands[0], ReportTurns) and isinstance(commands[1], StartReply)
    assert commands[1].messages == (
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What are your hours?"},
    )
    assert m.call.counters.turns == 1 and m.running


def test_dtmf_is_worded_by_the_template_and_never_logged_as_a_digit() -> None:
    """A key press becomes a user message worded by the number's template."""
    m = _machine()
    commands = m.receive_phone(cr.Dtmf(digit="7"), 1.0)
    start = commands[-1]
    assert isinstance(start, StartReply) and start.messages[-1]["content"] == "Key 7."
    assert m.call.counters.dtmf == 1


def test_interrupt_aborts_the_running_reply_and_keeps_what_was_heard() -> None:
    """An interrupt while the reply streams aborts it; history keeps Twilio's heard words."""
    m = _machine()
    [_, start] = m.receive_phone(_prompt("Tell me a story"), 1.0)
    rid = start.response_id  # type: ignore[union-attr]
    m.reply_audio(rid, 1000, "Once upon a time. ", 1.2)
    m.reply_audio(rid, 1000, "There was a fox. ", 1.3)
    commands = m.receive_phone(cr.Interrupt(utterance_until_interrupt="Once upon",
                                            duration_until_interrupt_ms=600), 1.5)  # fmt: skip
    assert commands == [AbortStream(rid)]
    assert m.call.history.heard_text(rid) == "Once upon" and not m.running
    assert m.call.counters.barge_ins == 1


def test_interrupt_without_words_cuts_history_to_the_clips_it_covers() -> None:
    """With only durationUntilInterruptMs, history keeps the sentences whose clips it covers."""
    m = _machine()
    [_, start] = m.receive_phone(_prompt("Hi"), 1.0)
    rid = start.response_id  # type: ignore[union-attr]
    m.reply_audio(rid, 800, "First. ", 1.1)
    m.reply_audio(rid, 800, "Second. ", 1.2)
    m.reply_finished(rid)
    assert m.receive_phone(cr.Interrupt(duration_until_interrupt_ms=1000), 2.0) == []
    assert m.call.history.heard_text(rid) == "First. "


def test_newer_input_supersedes_the_running_reply() -> None:
    """A prompt while a reply streams aborts it and starts the new reply after it."""
    m = _machine()
    [_, first] = m.receive_phone(_prompt("One"), 1.0)
    commands = m.receive_phone(_prompt("Two"), 1.5)
    assert commands[0] == AbortStream(first.response_id)  # type: ignore[union-attr]
    assert isinstance(commands[-1], StartReply)
    assert commands[-1].response_id != first.response_id  # type: ignore[union-attr]


def test_interrupt_with_nothing_playing_is_ignored() -> None:
    """An interrupt when no reply of ours is playing changes nothing."""
    m = _machine()
    assert m.receive_phone(cr.Interrupt(duration_until_interrupt_ms=10), 1.0) == []
    assert m.call.counters.barge_ins == 0


def test_router_failure_apologises_and_records_the_failure_on_the_turn() -> None:
    """A failed reply sends the apology as a final text token; the turn says why it failed."""
    m = _machine()
    [_, start] = m.receive_phone(_prompt("Hi"), 1.0)
    rid = start.response_id  # type: ignore[union-attr]
    [apology] = m.reply_failed(rid, "timeout")
    assert isinstance(apology, SendPhone)
    assert orjson.loads(apology.frame) == {
        "type": "text",
        "token": "Sorry, a glitch.",
        "last": True,
    }
    assert m.call.latency.turns[-1].failed == "timeout"
    assert m.call.history.messages()[-1] == {"role": "assistant", "content": "Sorry, a glitch."}


def test_caller_leaving_stops_the_reply_and_a_repeated_setup_is_a_protocol_error() -> None:
    """The caller's side closing aborts the running reply; a second setup is malformed."""
    m = _machine()
    [_, start] = m.receive_phone(_prompt("Hi"), 1.0)
    with pytest.raises(ProtocolError):
        m.receive_phone(cr.Setup(call_sid="CA1"), 1.1)
    commands = m.caller_left("closed")
    assert commands == [AbortStream(start.response_id), StopCall()]  # type: ignore[union-attr]
    assert m.call.end_reason is EndReason.CALLER_HANGUP


def test_the_first_clip_fetched_times_the_turn_and_later_clips_do_not() -> None:
    """The speaker only reports clips (`clip_announced`, `clip_fetched`): the machine stamps
    the turn's fetch time from its first clip, whatever clips are fetched after it."""
    m = _machine()
    [start] = m.greet("Hello there!")
    assert isinstance(start, StartReply)
    rid = start.response_id
    first = m.awaits_first_audio(rid)
    m.clip_announced(rid, 1.0)
    assert first and not m.awaits_first_audio(rid)
    m.clip_fetched(rid, 800.0, first, 1.2)
    m.clip_announced(rid, 1.5)
    m.clip_fetched(rid, 900.0, False, 2.0)
    assert m.call.latency.turns[0].clip_fetched == 1.2


def test_text_tokens_spoken_are_what_an_interrupt_cuts_back_to() -> None:
    """`text_spoken` hands each token to the history as sent; an interrupt with Twilio's
    heard words keeps those in the history."""
    m = _machine()
    m.receive_phone(_prompt("Hours?"), 1.0)
    rid = m.reply
    assert rid is not None
    m.text_spoken(rid, "We open at nine. ", 1.1)
    m.text_spoken(rid, "We close at five.", 1.2)
    m.receive_phone(cr.Interrupt(utterance_until_interrupt="We open at nine.",
                                 duration_until_interrupt_ms=900), 1.5)  # fmt: skip
    assert m.call.history.messages()[-1] == {"role": "assistant", "content": "We open at nine."}
