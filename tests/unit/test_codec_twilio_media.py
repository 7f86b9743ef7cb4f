"""Twilio Media Streams codec: inbound parsing, outbound strictness, exact wire shapes."""

from __future__ import annotations

import base64

import orjson
import pytest

from voiceagent.errors import ProtocolError
from voiceagent.protocols import twilio_media as tm

SID = "MZ" + "a" * 32
START_WIRE = {
    "event": "start",
    "sequenceNumber": "1",
    "start": {
        "accountSid": "AC" + "b" * 32,
        "streamSid": SID,
        "callSid": "CA" + "c" * 32,
        "tracks": ["inbound"],
        "customParameters": {"tenant": "acme"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    },
    "streamSid": SID,
}
MEDIA_WIRE = {
    "event": "media",
    "sequenceNumber": "3",
    "media": {"track": "inbound", "chunk": "1", "timestamp": "5", "payload": "/////////w=="},
    "streamSid": SID,
}


def test_connected_parses() -> None:
    """The first `connected` frame parses although it has no streamSid."""
    frame = tm.parse_inbound('{"event": "connected", "protocol": "Call", "version": "1.0.0"}')
    assert isinstance(frame, tm.Connected)
    assert frame.protocol == "Call"


def test_start_parses_with_numbers_from_strings() -> None:
    """A documented `start` frame yields typed fields, with sequenceNumber as an int."""
    frame = tm.parse_inbound(orjson.dumps(START_WIRE))
    assert isinstance(frame, tm.Start)
    assert frame.sequence_number == 1
    assert frame.stream_sid == SID
    assert frame.start.call_sid == "CA" + "c" * 32
    assert frame.start.custom_parameters == {"tenant": "acme"}
    assert frame.start.media_format.sample_rate == 8000


def test_start_without_custom_parameters_defaults_to_empty() -> None:
    """A `start` without customParameters gets an empty dict."""
    wire = orjson.loads(orjson.dumps(START_WIRE))
    del wire["start"]["customParameters"]
    frame = tm.parse_inbound(orjson.dumps(wire))
    assert isinstance(frame, tm.Start)
    assert frame.start.custom_parameters == {}


def test_unknown_fields_are_ignored() -> None:
    """Fields Twilio may add later, top-level or nested, do not break parsing."""
    wire = {**MEDIA_WIRE, "newField": 1, "media": {**MEDIA_WIRE["media"], "extra": "x"}}
    frame = tm.parse_inbound(orjson.dumps(wire))
    assert isinstance(frame, tm.Media)


def test_media_parses_and_decodes_audio() -> None:
    """A `media` frame has int chunk/timestamp and audio() returns the raw µ-law bytes."""
    frame = tm.parse_inbound(orjson.dumps(MEDIA_WIRE).decode())
    assert isinstance(frame, tm.Media)
    assert (frame.media.chunk, frame.media.timestamp, frame.sequence_number) == (1, 5, 3)
    assert frame.audio() == b"\xff" * 7


@pytest.mark.parametrize("payload", ["not base64!", "=AAA", "AAA", "AA==AA=="])
def test_media_audio_rejects_invalid_base64(payload: str) -> None:
    """audio() raises ProtocolError when the payload is not valid base64."""
    wire = {**MEDIA_WIRE, "media": {**MEDIA_WIRE["media"], "payload": payload}}
    frame = tm.parse_inbound(orjson.dumps(wire))
    assert isinstance(frame, tm.Media)
    with pytest.raises(ProtocolError):
        frame.audio()


def test_dtmf_mark_stop_parse() -> None:
    """`dtmf`, `mark` and `stop` frames parse into their models."""
    dtmf = tm.parse_inbound(
        '{"event":"dtmf","streamSid":"MZ1","sequenceNumber":"5",'
        '"dtmf":{"track":"inbound_track","digit":"1"}}'
    )
    mark = tm.parse_inbound(
        '{"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"resp-42"}}'
    )
    stop = tm.parse_inbound(
        '{"event":"stop","sequenceNumber":"6","streamSid":"MZ1",'
        '"stop":{"accountSid":"AC1","callSid":"CA1"}}'
    )
    assert isinstance(dtmf, tm.Dtmf) and dtmf.dtmf.digit == "1"
    assert isinstance(mark, tm.Mark) and mark.mark.name == "resp-42"
    assert isinstance(stop, tm.Stop) and stop.stop.call_sid == "CA1"


def test_read_inbound_returns_media_as_bytes_and_validates_every_other_event() -> None:
    """The server's one reader: a media frame's µ-law as bytes, any other event as its
    validated model; a mark without its name or streamSid is malformed."""
    audio = bytes(range(160))
    wire = {
        **MEDIA_WIRE,
        "media": {**MEDIA_WIRE["media"], "payload": base64.b64encode(audio).decode()},
    }
    assert tm.read_inbound(orjson.dumps(wire)) == audio
    mark = tm.read_inbound(
        '{"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"r1:3"}}'
    )
    assert isinstance(mark, tm.Mark) and mark.mark.name == "r1:3"
    dtmf = tm.read_inbound(
        '{"event":"dtmf","streamSid":"MZ1","sequenceNumber":"5",'
        '"dtmf":{"track":"inbound_track","digit":"1"}}'
    )
    assert isinstance(dtmf, tm.Dtmf)
    for bad in (
        '{"event":"mark","streamSid":"MZ1","mark":{"name":3}}',
        '{"event":"mark","streamSid":"MZ1","mark":"r1:3"}',
        '{"event":"mark","mark":{"name":"r1:3"}}',
    ):
        with pytest.raises(ProtocolError):
            tm.read_inbound(bad)


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[1, 2]",
        b'"media"',
        b'{"event": "bogus"}',
        b'{"streamSid": "MZ1"}',
        b'{"event": 3}',
        b'{"event":"media","streamSid":"MZ1","media":{"track":"inbound","chunk":"1","timestamp":"5"}}',
        b'{"event":"media","streamSid":"MZ1","media":{"track":"inbound","chunk":"x","timestamp":"5","payload":""}}',
        b'{"event":"mark","stream_sid":"MZ1","mark":{"name":"a"}}',
    ],
)
def test_parse_inbound_rejects_bad_frames(raw: bytes) -> None:
    """Bad JSON, non-objects, unknown/missing events, missing or bad fields raise ProtocolError."""
    with pytest.raises(ProtocolError):
        tm.parse_inbound(raw)


def test_dump_start_is_the_documented_wire_shape() -> None:
    """A Start built in Python dumps to exactly the documented frame, numbers as strings."""
    start = tm.Start(
        sequence_number=1,
        stream_sid=SID,
        start=tm.StartInfo(
            account_sid="AC" + "b" * 32,
            stream_sid=SID,
            call_sid="CA" + "c" * 32,
            custom_parameters={"tenant": "acme"},
        ),
    )
    assert orjson.loads(tm.dump(start)) == START_WIRE


def test_dump_inbound_round_trips() -> None:
    """Every inbound frame parses back to an equal model after dump()."""
    frames = [
        tm.Connected(),
        tm.parse_inbound(orjson.dumps(MEDIA_WIRE)),
        tm.Dtmf(
            stream_sid=SID, sequence_number=9, dtmf=tm.DtmfInfo(track="inbound_track", digit="#")
        ),
        tm.Mark(stream_sid=SID, sequence_number=10, mark=tm.MarkInfo(name="m1")),
        tm.Stop(
            stream_sid=SID, sequence_number=11, stop=tm.StopInfo(account_sid="AC", call_sid="CA")
        ),
    ]
    for frame in frames:
        assert tm.parse_inbound(tm.dump(frame)) == frame
    assert orjson.loads(tm.dump(frames[1])) == MEDIA_WIRE
    assert "sequenceNumber" not in orjson.loads(tm.dump(tm.Connected()))


def test_fast_dumpers_emit_exact_outbound_shapes() -> None:
    """dump_media/dump_mark/dump_clear produce the documented outbound frames."""
    audio = bytes(range(160))
    assert orjson.loads(tm.dump_media(SID, audio)) == {
        "event": "media",
        "streamSid": SID,
        "media": {"payload": base64.b64encode(audio).decode()},
    }
    assert orjson.loads(tm.dump_mark(SID, "resp-1")) == {
        "event": "mark",
        "streamSid": SID,
        "mark": {"name": "resp-1"},
    }
    assert orjson.loads(tm.dump_clear(SID)) == {"event": "clear", "streamSid": SID}


def test_parse_outbound_accepts_what_the_dumpers_send() -> None:
    """The strict outbound parser accepts the fast dumpers' frames and the model dumps."""
    media = tm.parse_outbound(tm.dump_media(SID, b"\xff\x7f"))
    mark = tm.parse_outbound(tm.dump_mark(SID, "m"))
    clear = tm.parse_outbound(tm.dump_clear(SID))
    assert isinstance(media, tm.OutMedia) and media.media.payload == "/38="
    assert isinstance(mark, tm.OutMark) and mark.mark.name == "m"
    assert isinstance(clear, tm.OutClear) and clear.stream_sid == SID
    model = tm.OutMark(stream_sid=SID, mark=tm.OutMarkInfo(name="x"))
    assert tm.parse_outbound(tm.dump(model)) == model


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        '{"event":"clear"}',
        '{"event":"clear","streamSid":"MZ1","extra":true}',
        '{"event":"media","streamSid":"MZ1","media":{"payload":"AA==","track":"outbound"}}',
        '{"event":"media","streamSid":"MZ1","media":{}}',
        '{"event":"media","streamSid":"MZ1","media":{"payload":123}}',
        '{"event":"mark","streamSid":"MZ1"}',
        '{"event":"start","streamSid":"MZ1"}',
        '{"event":"sendDigits","streamSid":"MZ1","digits":"1"}',
        '{"event":"clear","stream_sid":"MZ1"}',
    ],
)
def test_parse_outbound_is_strict(raw: str) -> None:
    """Like Twilio, the outbound parser rejects extra/missing fields, wrong types and events."""
    with pytest.raises(ProtocolError):
        tm.parse_outbound(raw)


@pytest.mark.parametrize(("field", "value"), [("sampleRate", 2**40), ("channels", -1)])
def test_start_with_an_implausible_media_format_is_refused(field: str, value: int) -> None:
    """A `start` whose mediaFormat numbers are out of range is a ProtocolError, not a value
    that travels on into logs and records."""
    start = {
        "event": "start", "sequenceNumber": "1", "streamSid": "MZ1",
        "start": {
            "accountSid": "AC1", "streamSid": "MZ1", "callSid": "CA1", "tracks": ["inbound"],
            "customParameters": {},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
            | {field: value},
        },
    }  # fmt: skip
    with pytest.raises(ProtocolError):
        tm.parse_inbound(orjson.dumps(start))
