"""X-Twilio-Signature: the docs/protocols.md, Twilio §3.6 test vectors and the verifier's URL
rebuilding."""

from __future__ import annotations

import hashlib

from multidict import MultiDict

from voiceagent.protocols.signature import (
    SignatureVerifier,
    compute_signature,
    is_call_sid,
    stream_token,
    verify_stream_token,
)

TOKEN = "12345"
WEBHOOK_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
WEBHOOK_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
BODY = '{"property": "value", "boolean": true}'
BODY_SHA = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"


def test_vector_form_webhook() -> None:
    """The twilio-python form-webhook vector signs to RSOYDt4T1cUTdK1PDd93/VVr8B8=."""
    assert compute_signature(TOKEN, WEBHOOK_URL, WEBHOOK_PARAMS) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_vector_form_webhook_with_port() -> None:
    """The same webhook with an explicit :443 signs to kvajT1Ptam85bY51eRf/AJRuM3w=."""
    url = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    assert compute_signature(TOKEN, url, WEBHOOK_PARAMS) == "kvajT1Ptam85bY51eRf/AJRuM3w="


def test_vector_json_body_sha256() -> None:
    """The JSON-body vector: the body hash and the signature of the hashed URL match."""
    assert hashlib.sha256(BODY.encode()).hexdigest() == BODY_SHA
    url = f"{WEBHOOK_URL}&bodySHA256={BODY_SHA}"
    assert compute_signature(TOKEN, url, {}) == "a9nBmqA0ju/hNViExpshrM61xv4="


def test_vector_websocket_upgrade() -> None:
    """The WebSocket vector: wss://example.com/media with no params signs to 7PR3qMkp…."""
    assert compute_signature(TOKEN, "wss://example.com/media") == "7PR3qMkpDyEJtMrVOY/LDyNq8J8="


def test_repeated_values_are_sorted_and_deduplicated() -> None:
    """A list value signs like its sorted distinct values, in any order, with duplicates."""
    one = compute_signature(TOKEN, "https://x.test/a", {"K": ["b", "a", "b"]})
    two = compute_signature(TOKEN, "https://x.test/a", {"K": ("a", "b")})
    assert one == two
    assert one != compute_signature(TOKEN, "https://x.test/a", {"K": "a"})


def test_urls_are_rebuilt_from_the_public_base() -> None:
    """https_url and wss_url use the public base, trailing slash stripped, https → wss."""
    verifier = SignatureVerifier(TOKEN, "https://app.example.com/")
    assert verifier.https_url("/twilio/voice?x=1") == "https://app.example.com/twilio/voice?x=1"
    assert verifier.wss_url("/media") == "wss://app.example.com/media"
    assert SignatureVerifier(TOKEN, "http://localhost:8080").wss_url("/relay") == (
        "ws://localhost:8080/relay"
    )


def test_verify_webhook_accepts_the_vector_with_and_without_port() -> None:
    """verify_webhook accepts Twilio's signature whether it was computed with :443 or not."""
    verifier = SignatureVerifier(TOKEN, "https://mycompany.com")
    assert verifier.verify_webhook(
        "/myapp.php?foo=1&bar=2", WEBHOOK_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    )
    assert verifier.verify_webhook(
        "/myapp.php?foo=1&bar=2", WEBHOOK_PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w="
    )


def test_verify_webhook_handles_multidict_forms() -> None:
    """A MultiDict form with a repeated key verifies against the simulator's signature."""
    form: MultiDict[str] = MultiDict([("CallSid", "CA1"), ("Tag", "b"), ("Tag", "a")])
    verifier = SignatureVerifier(TOKEN, "https://app.example.com")
    signature = compute_signature(
        TOKEN, "https://app.example.com/voice", {"CallSid": "CA1", "Tag": ["a", "b"]}
    )
    assert verifier.verify_webhook("/voice", form, signature)


def test_verify_webhook_rejects_missing_or_wrong_signatures() -> None:
    """A missing, empty or wrong signature, or tampered params, do not verify."""
    verifier = SignatureVerifier(TOKEN, "https://mycompany.com")
    good = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    path = "/myapp.php?foo=1&bar=2"
    assert not verifier.verify_webhook(path, WEBHOOK_PARAMS, None)
    assert not verifier.verify_webhook(path, WEBHOOK_PARAMS, "")
    assert not verifier.verify_webhook(path, WEBHOOK_PARAMS, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    assert not verifier.verify_webhook(path, {**WEBHOOK_PARAMS, "Digits": "9"}, good)
    assert not SignatureVerifier("other", "https://mycompany.com").verify_webhook(
        path, WEBHOOK_PARAMS, good
    )


def test_verify_upgrade_uses_the_wss_url() -> None:
    """verify_upgrade accepts the wss:// vector and rejects a signature over the https:// URL."""
    verifier = SignatureVerifier(TOKEN, "https://example.com/")
    assert verifier.verify_upgrade("/media", "7PR3qMkpDyEJtMrVOY/LDyNq8J8=")
    https_signature = compute_signature(TOKEN, "https://example.com/media")
    assert not verifier.verify_upgrade("/media", https_signature)
    assert not verifier.verify_upgrade("/media", None)


SID = "CA" + "0123456789abcdef" * 2


def test_stream_token_is_short_url_safe_and_bound_to_call_and_key() -> None:
    """The stream token is 22 url-safe characters, stable per key and CallSid, else different."""
    token = stream_token(TOKEN, SID)
    assert len(token) == 22 and token.replace("-", "").replace("_", "").isalnum()
    assert token == stream_token(TOKEN, SID)
    assert token != stream_token(TOKEN, SID[:-1] + "0")
    assert token != stream_token("other", SID)


def test_verify_stream_token_accepts_only_the_calls_own_token() -> None:
    """Only the token of that CallSid under that key verifies; missing, foreign or odd ones fail."""
    token = stream_token(TOKEN, SID)
    assert verify_stream_token(TOKEN, SID, token)
    assert not verify_stream_token(TOKEN, "CA" + "f" * 32, token)
    assert not verify_stream_token("other", SID, token)
    for bad in (None, "", token[:-1], token + "A", "é" * 22, token.upper()):
        assert not verify_stream_token(TOKEN, SID, bad)


def test_call_sid_shape() -> None:
    """A CallSid is CA plus 32 hex digits; anything else is not."""
    assert is_call_sid(SID) and is_call_sid("CA" + "ABCDEF0123456789" * 2)
    for bad in ("", "CA1", "AC" + "0" * 32, SID + "0", SID[:-1] + "g", " " + SID, SID + "\n"):
        assert not is_call_sid(bad)


def test_verify_webhook_uses_the_raw_percent_encoded_query() -> None:
    """A URL signed with %20 in its query verifies against the same raw query, not a decoded one."""
    verifier = SignatureVerifier(TOKEN, "https://app.example.com")
    path = "/voice/action?mode=relay-router&note=a%20b"
    signature = compute_signature(TOKEN, "https://app.example.com" + path, {"CallSid": SID})
    assert verifier.verify_webhook(path, {"CallSid": SID}, signature)
    assert not verifier.verify_webhook(path.replace("%20", " "), {"CallSid": SID}, signature)


def test_verify_webhook_refuses_undecodable_input_without_raising() -> None:
    """Surrogate-escaped bytes or non-text values do not verify (and raise nothing)."""
    verifier = SignatureVerifier(TOKEN, "https://app.example.com")
    assert not verifier.verify_webhook("/voice?x=\udcff", {"CallSid": SID}, "sig")
    assert not verifier.verify_webhook("/voice", {"CallSid": b"bytes"}, "sig")
