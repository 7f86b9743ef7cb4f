"""The shared base64 helpers every codec uses: strict on the way in, no newline on the way out."""

from __future__ import annotations

import base64

import pytest

from voiceagent.errors import ProtocolError
from voiceagent.protocols._wire import b64decode, b64encode


@pytest.mark.parametrize("size", [0, 1, 2, 3, 160, 320, 800, 4001])
def test_round_trip_matches_the_standard_library(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    encoded = b64encode(data)
    assert encoded == base64.b64encode(data).decode() and "\n" not in encoded
    assert b64decode(encoded) == data
    assert b64encode(bytearray(data)) == encoded


@pytest.mark.parametrize(
    "bad",
    ["abc", "ab=c", "====", "ab\ncd==", "YQ==YQ==", "a\u00e9bc", "YW Jj", "YWJj-_==", "=YWJ"],
)
def test_anything_but_strict_base64_is_a_protocol_error_naming_the_field(bad: str) -> None:
    with pytest.raises(ProtocolError, match=r"invalid base64 in media\.payload"):
        b64decode(bad, "media.payload")
