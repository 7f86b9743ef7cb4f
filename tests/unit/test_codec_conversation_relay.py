"""ConversationRelay codec: lenient inbound parsing, strict outbound checks, exact dumps."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from voiceagent.errors import ProtocolError
from voiceagent.protocols import conversation_relay as cr

SETUP_WIRE = {
    "type": "setup",
    "sessionId": "VX00000000000000000000000000000000",
    "accountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    "parentCallSid": "",
    "callSid": "CA00000000000000000000000000000000",
    "from": "+18005550100",
    "to": "+18005550101",
    "forwardedFrom": "+18005550102",
    "callType": "PSTN",
    "callerName": "",
    "direction": "inbound",
    "callStatus": "RINGING",
    "customParameters": {"callReference": "bar"},
}


def test_setup_parses_the_documented_message() -> None:
    """The documented `setup` maps every camelCase key, including `from`, to snake_case."""
    msg = cr.parse_inbound(orjson.dumps(SETUP_WIRE))
    assert isinstance(msg, cr.Setup)
    assert msg.from_ == "+18005550100"
    assert msg.forwarded_from == "+18005550102"
    assert msg.call_status == "RINGING"
    assert msg.custom_parameters == {"callReference": "bar"}


def test_setup_dump_is_the_documented_wire_shape() -> None:
    """A Setup dumps back to exactly the 13 documented keys, with `from` as the wire name."""
    msg = cr.parse_inbound(orjson.dumps(SETUP_WIRE))
    assert orjson.loads(cr.dump(msg)) == SETUP_WIRE


def test_setup_missing_and_null_values_become_empty_strings() -> None:
    """Absent or null setup values read as "" and customParameters as {}."""
    msg = cr.parse_inbound(
        '{"type":"setup","callSid":"CA1","callerName":null,"customParameters":null}'
    )
    assert isinstance(msg, cr.Setup)
    assert (msg.call_sid, msg.caller_name, msg.from_) == ("CA1", "", "")
    assert msg.custom_parameters == {}


def test_prompt_defaults_last_to_true_and_ignores_extra_keys() -> None:
    """A prompt without `last` is final, and unknown keys Twilio may add are ignored."""
    msg = cr.parse_inbound(
        '{"type":"prompt","voicePrompt":"Hi there","lang":"en-US","confidence":0.9}'
    )
    assert isinstance(msg, cr.Prompt)
    assert (msg.voice_prompt, msg.lang, msg.last) == ("Hi there", "en-US", True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(460, 460), ("460", 460), (460.0, 460), ("460.6", 461), (None, None)],
)
def test_interrupt_duration_accepts_int_string_or_float(
    value: object, expected: int | None
) -> None:
    """durationUntilInterruptMs is read from an int, a numeric string or a float."""
    raw = orjson.dumps(
        {
            "type": "interrupt",
            "utteranceUntilInterrupt": "Life is",
            "durationUntilInterruptMs": value,
        }
    )
    msg = cr.parse_inbound(raw)
    assert isinstance(msg, cr.Interrupt)
    assert msg.duration_until_interrupt_ms == expected
    assert msg.utterance_until_interrupt == "Life is"


@pytest.mark.parametrize("value", ["1e308", "-5", '"NaN"', '"Infinity"', "1e12", '"1e999"'])
def test_interrupt_duration_outside_its_plausible_range_reads_as_unknown(value: str) -> None:
    """A duration past a day, negative, NaN or infinite is bounded at the codec: the interrupt
    still counts, its duration is unknown (None), never a number no logger can write."""
    raw = '{"type": "interrupt", "durationUntilInterruptMs": ' + value + "}"
    msg = cr.parse_inbound(raw)
    assert isinstance(msg, cr.Interrupt)
    assert msg.duration_until_interrupt_ms is None


def test_info_timestamp_outside_its_range_reads_as_unknown() -> None:
    """An `info` ts past 2**53 (or negative) is dropped to None at the codec."""
    msg = cr.parse_inbound('{"type": "info", "name": "x", "ts": ' + str(2**60) + "}")
    assert isinstance(msg, cr.Info) and msg.ts is None


def test_interrupt_without_fields_uses_defaults() -> None:
    """An interrupt with no details has an empty utterance and no duration."""
    msg = cr.parse_inbound('{"type":"interrupt"}')
    assert isinstance(msg, cr.Interrupt)
    assert (msg.utterance_until_interrupt, msg.duration_until_interrupt_ms) == ("", None)


def test_dtmf_error_and_info_parse() -> None:
    """`dtmf`, `error` and `info` (string or numeric value, optional ts) parse."""
    dtmf = cr.parse_inbound('{"type":"dtmf","digit":"5"}')
    error = cr.parse_inbound('{"type":"error","description":"Invalid message received"}')
    info = cr.parse_inbound(
        '{"type":"info","name":"agentSpeaking","value":"on","ts":1752091234567}'
    )
    delay = cr.parse_inbound('{"type":"info","name":"roundTripDelayMs","value":148}')
    assert isinstance(dtmf, cr.Dtmf) and dtmf.digit == "5"
    assert isinstance(error, cr.Error) and error.description == "Invalid message received"
    assert isinstance(info, cr.Info) and (info.value, info.ts) == ("on", 1752091234567)
    assert isinstance(delay, cr.Info) and (delay.value, delay.ts) == ("148", None)


@pytest.mark.parametrize(
    "raw",
    [
        "{oops",
        "[]",
        '{"type":"hello"}',
        '{"voicePrompt":"hi"}',
        '{"type":"prompt"}',
        '{"type":"prompt","voicePrompt":"hi","last":"maybe"}',
        '{"type":"interrupt","durationUntilInterruptMs":"soon"}',
        '{"type":"dtmf"}',
    ],
)
def test_parse_inbound_rejects_bad_messages(raw: str) -> None:
    """Bad JSON, unknown or missing types and bad fields raise ProtocolError."""
    with pytest.raises(ProtocolError):
        cr.parse_inbound(raw)


def test_text_token_is_never_trimmed_and_none_fields_are_left_out() -> None:
    """dump(Text) keeps surrounding spaces of the token and omits unset optional fields."""
    wire = orjson.loads(cr.dump(cr.Text(token="  Hello world! ")))
    assert wire == {"type": "text", "token": "  Hello world! ", "last": False}
    full = cr.Text(token="x", last=True, lang="en-US", interruptible=True, preemptible=False)
    assert orjson.loads(cr.dump(full)) == {
        "type": "text",
        "token": "x",
        "last": True,
        "lang": "en-US",
        "interruptible": True,
        "preemptible": False,
    }


def test_outbound_models_dump_to_documented_shapes() -> None:
    """play, sendDigits, language and end dump with their camelCase wire names."""
    assert orjson.loads(cr.dump(cr.Play(source="https://x.test/a.wav"))) == {
        "type": "play",
        "source": "https://x.test/a.wav",
        "loop": 1,
    }
    assert orjson.loads(cr.dump(cr.SendDigits(digits="9www#*"))) == {
        "type": "sendDigits",
        "digits": "9www#*",
    }
    assert orjson.loads(cr.dump(cr.Language(tts_language="sv-SE"))) == {
        "type": "language",
        "ttsLanguage": "sv-SE",
    }
    assert orjson.loads(cr.dump(cr.End(handoff_data='{"a":1}'))) == {
        "type": "end",
        "handoffData": '{"a":1}',
    }
    assert orjson.loads(cr.dump(cr.End())) == {"type": "end"}


def test_parse_outbound_round_trips_every_message() -> None:
    """Each outbound message parses back, strictly, to an equal model."""
    messages = [
        cr.Text(token=" hi", last=True),
        cr.Play(source="https://x.test/a.wav", loop=0, interruptible=False),
        cr.SendDigits(digits="123w4"),
        cr.Language(transcription_language="en-US"),
        cr.End(handoff_data="x"),
    ]
    for message in messages:
        assert cr.parse_outbound(cr.dump(message)) == message


@pytest.mark.parametrize(
    "raw",
    [
        "nope",
        '{"type":"text"}',
        '{"type":"text","token":null}',
        '{"type":"text","token":"hi","last":"true"}',
        '{"type":"text","token":"hi","extra":1}',
        '{"type":"play","source":"not a url"}',
        '{"type":"play","source":"https://x.test/a.wav","loop":"2"}',
        '{"type":"play","source":"https://x.test/a.wav","loop":-1}',
        '{"type":"sendDigits","digits":""}',
        '{"type":"sendDigits","digits":"12a"}',
        '{"type":"language"}',
        '{"type":"end","handoffData":{"reason":"x"}}',
        '{"type":"end","handoff_data":"x"}',
        '{"type":"media","payload":"AA=="}',
    ],
)
def test_parse_outbound_rejects_what_twilio_rejects(raw: str) -> None:
    """Invalid outbound messages (types, extra keys, digits, URLs, language) raise ProtocolError."""
    with pytest.raises(ProtocolError):
        cr.parse_outbound(raw)


def test_invalid_outbound_models_cannot_be_built() -> None:
    """Building a SendDigits with bad digits or an empty Language fails in Python too."""
    with pytest.raises(ValidationError):
        cr.SendDigits(digits="12x")
    with pytest.raises(ValidationError):
        cr.Language()
