"""Inworld Router codec: request bodies, the SSE decoder, chunk parsing, error bodies, encoders."""

from __future__ import annotations

import base64

import orjson
import pytest

from voiceagent.errors import ProtocolError
from voiceagent.protocols import inworld_router as ir

REQUEST_WIRE = {
    "model": "openai/gpt-4.1-mini",
    "messages": [
        {"role": "system", "content": "You are a helpful voice assistant."},
        {"role": "user", "content": "What is the meaning of life?"},
    ],
    "stream": True,
    "max_tokens": 1000,
    "audio": {"voice": "Clive", "model": "inworld-tts-2"},
}


def test_dump_request_matches_the_documented_body() -> None:
    """A ChatRequest dumps to the documented body, leaving out unset fields."""
    req = ir.ChatRequest(
        model="openai/gpt-4.1-mini",
        messages=[
            ir.ChatMessage(role="system", content="You are a helpful voice assistant."),
            ir.ChatMessage(role="user", content="What is the meaning of life?"),
        ],
        max_tokens=1000,
        audio=ir.AudioRequest(voice="Clive", model="inworld-tts-2"),
    )
    body = ir.dump_request(req)
    assert isinstance(body, bytes)
    assert orjson.loads(body) == REQUEST_WIRE
    assert ir.parse_request(body) == req


def test_router_extras_are_kept_top_level_and_nested() -> None:
    """Unknown top-level router options survive parsing and merge with a nested extra_body."""
    wire = {
        **REQUEST_WIRE,
        "models": ["a", "b"],
        "extra_body": {"fallback": {"ttft_timeout": "500ms"}},
        "user": "caller-1",
    }
    req = ir.parse_request(orjson.dumps(wire))
    assert req.user == "caller-1"
    assert req.router_options() == {"models": ["a", "b"], "fallback": {"ttft_timeout": "500ms"}}
    assert orjson.loads(ir.dump_request(req)) == wire


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"messages": []}',
        b'{"model": "m"}',
        b'{"model": "m", "messages": [{"role": "user"}]}',
        b'{"model": "m", "messages": [], "audio": {"model": "inworld-tts-2"}}',
        b'{"model": "m", "messages": [], "audio": true}',
    ],
)
def test_parse_request_rejects_invalid_bodies(raw: bytes) -> None:
    """Bad JSON, missing model/messages, or an audio block without voice raise ProtocolError."""
    with pytest.raises(ProtocolError):
        ir.parse_request(raw)


# --- SSE decoding --------------------------------------------------------------------------


def test_sse_decoder_joins_lines_split_across_feeds() -> None:
    """A data line split over several feeds comes out once, when its newline arrives."""
    decoder = ir.SseDecoder()
    assert decoder.feed(b'data: {"a"') == []
    assert decoder.feed(b":1}") == []
    assert decoder.feed(b"\n\ndata: [DO") == ['{"a":1}']
    assert decoder.feed(b"NE]\n\n") == ["[DONE]"]


def test_sse_decoder_handles_crlf_comments_and_other_fields() -> None:
    """CRLF endings are stripped; comments, blank lines, event/id lines and junk are skipped."""
    stream = b": keep-alive\r\n\r\nevent: message\r\nid: 7\r\ndata: one\r\n\r\nnoise\ndata:two\n\n"
    assert ir.SseDecoder().feed(stream) == ["one", "two"]


def test_sse_decoder_handles_multibyte_characters_split_across_feeds() -> None:
    """A UTF-8 character split between two feeds decodes intact."""
    raw = "data: héllo\n".encode()
    cut = raw.index(b"\xc3") + 1
    decoder = ir.SseDecoder()
    assert decoder.feed(raw[:cut]) == []
    assert decoder.feed(raw[cut:]) == ["héllo"]


def test_sse_decoder_flush_returns_an_unterminated_last_line() -> None:
    """flush() yields a final data line that never got its newline, then nothing."""
    decoder = ir.SseDecoder()
    assert decoder.feed(b"data: [DONE]") == []
    assert decoder.flush() == ["[DONE]"]
    assert decoder.flush() == []


def test_sse_decoder_refuses_a_line_past_its_limit_before_buffering_it() -> None:
    """A line fed in 64 KiB pieces raises SseLineTooLong at the piece that crosses the limit,
    so at most the limit is ever held; a line of exactly the limit still decodes."""
    decoder = ir.SseDecoder(max_line=256 * 1024)
    assert decoder.feed(b"data: ") == []
    piece = b"x" * 65536
    with pytest.raises(ir.SseLineTooLong):
        for _ in range(5):
            decoder.feed(piece)
    fits = ir.SseDecoder(max_line=6 + 4 * 65536)
    for chunk in (b"data: ", piece, piece, piece, piece):
        assert fits.feed(chunk) == []
    assert fits.feed(b"\ndata: next\n") == ["x" * 4 * 65536, "next"]


def test_sse_decoder_refuses_an_overlong_line_in_one_feed() -> None:
    """A whole overlong line arriving in one feed, newline included, is refused too."""
    with pytest.raises(ir.SseLineTooLong):
        ir.SseDecoder(max_line=100).feed(b"data: " + b"y" * 200 + b"\n")


# --- chunk parsing -------------------------------------------------------------------------


def test_parse_event_done_and_errors() -> None:
    """[DONE] is RouterDone; an error object or string mid-stream is RouterStreamError."""
    assert ir.parse_event("[DONE]") == ir.RouterDone()
    assert ir.parse_event('{"error":{"message":"boom","type":"server_error"}}') == (
        ir.RouterStreamError("boom")
    )
    assert ir.parse_event('{"error":"overloaded"}') == ir.RouterStreamError("overloaded")


def test_parse_event_reads_transcript_audio_and_content() -> None:
    """A chunk exposes delta.audio.transcript, decoded delta.audio.data, content and model."""
    pcm = b"\x01\x00\xff\x7f" * 10
    payload = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "openai/gpt-4.1-mini",
        "choices": [
            {
                "index": 0,
                "delta": {
                    "role": "assistant",
                    "content": "Hi! ",
                    "audio": {"transcript": "Hi! ", "data": base64.b64encode(pcm).decode()},
                },
                "finish_reason": None,
            }
        ],
    }
    chunk = ir.parse_event(orjson.dumps(payload).decode())
    assert isinstance(chunk, ir.RouterChunk)
    assert (chunk.transcript, chunk.audio, chunk.content) == ("Hi! ", pcm, "Hi! ")
    assert (chunk.model, chunk.id, chunk.finish_reason, chunk.usage) == (
        "openai/gpt-4.1-mini",
        "chatcmpl-1",
        None,
        None,
    )


def test_parse_event_final_chunk_has_finish_reason_and_usage() -> None:
    """The final chunk has no audio, a finish_reason and the usage."""
    raw = '{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"total_tokens":64}}'
    chunk = ir.parse_event(raw)
    assert chunk == ir.RouterChunk(finish_reason="stop", usage={"total_tokens": 64})
    assert isinstance(chunk, ir.RouterChunk) and chunk.audio == b""


@pytest.mark.parametrize(
    "payload",
    [
        "{not json",
        "[1]",
        '{"choices":[{"delta":{"audio":{"data":"***"}}}]}',
        '{"choices":{"delta":{}}}',
        '{"choices":[{"delta":"text"}]}',
        '{"choices":[{"delta":{"audio":{"transcript":5}}}]}',
    ],
)
def test_parse_event_rejects_malformed_chunks(payload: str) -> None:
    """Unparseable JSON, bad base64 or wrongly typed fields raise ProtocolError."""
    with pytest.raises(ProtocolError):
        ir.parse_event(payload)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '{"error":{"message":"Invalid key","type":"authentication_error","code":null}}',
            "Invalid key",
        ),
        ('{"error":"Too many requests"}', "Too many requests"),
        (
            '{"code":3,"message":"Tool calling is restricted","details":[]}',
            "Tool calling is restricted",
        ),
        ("upstream connect error", "upstream connect error"),
        ('{"unexpected": true}', '{"unexpected": true}'),
        ("", ""),
    ],
)
def test_parse_error_body_reads_every_documented_style(body: str, message: str) -> None:
    """OpenAI object/string errors, gRPC errors and raw text all yield a human message."""
    assert ir.parse_error_body(body) == message


def test_parse_error_body_truncates_raw_text() -> None:
    """A raw (non-JSON) error body is cut to 500 characters."""
    assert ir.parse_error_body("x" * 2000) == "x" * 500


# --- fake-side encoders --------------------------------------------------------------------


def test_sse_framing() -> None:
    """sse() frames a dict or a string as one `data:` event, and SSE_DONE ends the stream."""
    assert ir.sse({"a": 1}) == b'data: {"a":1}\n\n'
    assert ir.sse("[DONE]") == ir.SSE_DONE == b"data: [DONE]\n\n"


def test_encoded_stream_decodes_back() -> None:
    """A stream built with the encoders decodes back through SseDecoder and parse_event."""
    pcm = bytes(range(200))
    stream = b"".join(
        [
            ir.sse(ir.transcript_chunk("c1", "m", "Hello. ", first=True)),
            ir.sse(ir.audio_chunk("c1", "m", pcm)),
            ir.sse(ir.text_chunk("c1", "m", "Hello. ")),
            ir.sse(ir.finish_chunk("c1", "m", {"total_tokens": 3})),
            ir.SSE_DONE,
        ]
    )
    events = [ir.parse_event(p) for p in ir.SseDecoder().feed(stream)]
    assert events == [
        ir.RouterChunk(transcript="Hello. ", model="m", id="c1"),
        ir.RouterChunk(audio=pcm, model="m", id="c1"),
        ir.RouterChunk(content="Hello. ", model="m", id="c1"),
        ir.RouterChunk(finish_reason="stop", usage={"total_tokens": 3}, model="m", id="c1"),
        ir.RouterDone(),
    ]


def test_transcript_chunk_role_only_on_first() -> None:
    """Only the first transcript chunk announces role: assistant, like the documented stream."""
    first = ir.transcript_chunk("c", "m", "A", first=True)["choices"][0]["delta"]
    later = ir.transcript_chunk("c", "m", "B", first=False)["choices"][0]["delta"]
    assert first == {"role": "assistant", "audio": {"transcript": "A"}}
    assert later == {"audio": {"transcript": "B"}}


def test_error_body_styles_parse_back() -> None:
    """error_body builds OpenAI- and gRPC-style bodies that parse_error_body reads back."""
    openai = ir.error_body("openai", 401, "bad key")
    grpc = ir.error_body("grpc", 429, "slow down")
    assert openai == {"error": {"message": "bad key", "type": "authentication_error", "code": None}}
    assert grpc == {"code": 8, "message": "slow down", "details": []}
    assert ir.parse_error_body(orjson.dumps(openai).decode()) == "bad key"
    assert ir.parse_error_body(orjson.dumps(grpc).decode()) == "slow down"
    assert ir.error_body("openai", 503, "x")["error"]["type"] == "server_error"
