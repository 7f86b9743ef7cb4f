"""Issue 25 on the dashboard through real HTTP: hostile sign-in material is a 401 or 400
(never a 500), guesses are throttled, the cookie's Secure flag follows PUBLIC_URL."""

from __future__ import annotations

import asyncio

import pytest

from tests.rig import Rig, StartRig
from voiceagent.errors import ConfigError
from voiceagent.settings import MIN_ADMIN_TOKEN_CHARS, load_settings
from voiceagent.web.dashboard import COOKIE

ADMIN = "dashboard-admin-token-0123456789abcdef"


async def _raw(rig: Rig, request: bytes) -> tuple[int, bytes]:
    """Send `request` as raw bytes (headers a client library would refuse); status and body."""
    reader, writer = await asyncio.open_connection(rig.server.host, rig.server.port)
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _get(path: str, header: bytes) -> bytes:
    return (
        b"GET "
        + path.encode()
        + b" HTTP/1.1\r\nHost: x\r\n"
        + header
        + b"\r\n"
        + (b"Connection: close\r\n\r\n")
    )


HOSTILE_HEADERS = [
    "Authorization: Bearer \u00b2\u00b2\u00b2".encode(),
    b"Authorization: Bearer \xff\xfe",
    f"Cookie: {COOKIE}=\u00b2\u00b2\u00b2.x".encode(),
    f"Cookie: {COOKIE}={'9' * 5000}.x".encode(),
    f"Cookie: {COOKIE}=99999999999.".encode() + b"\xff\xfe",
]


@pytest.mark.parametrize("header", HOSTILE_HEADERS)
@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/data"])
async def test_hostile_sign_in_material_is_401_not_500(
    start_rig: StartRig, path: str, header: bytes
) -> None:
    """A non-ASCII or non-UTF-8 bearer, a cookie whose expiry is `²²²` or 5,000 digits, or
    non-UTF-8 bytes in its MAC: 401, no traceback in the body."""
    rig = await start_rig(admin_token=ADMIN)
    status, body = await _raw(rig, _get(path, header))
    assert status == 401 and b"Traceback" not in body


async def test_non_utf8_login_form_is_400_or_401(start_rig: StartRig) -> None:
    """`\\xff` in the sign-in form (raw or percent-encoded) is refused with a 4xx, not a 500."""
    rig = await start_rig(admin_token=ADMIN)
    for form in (b"token=%FF%FE", b"token=\xff\xfe"):
        request = (
            b"POST /dashboard/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: " + str(len(form)).encode() + b"\r\n\r\n" + form
        )
        status, body = await _raw(rig, request)
        assert status in (400, 401) and b"Traceback" not in body


@pytest.mark.parametrize("since", ["99999999999d", "9" * 40 + "w", "1d" + " " * 100])
async def test_since_too_far_back_is_400(start_rig: StartRig, since: str) -> None:
    """`?since=99999999999d` (past what a date can hold) or an overlong `since` is a 400
    naming the problem."""
    rig = await start_rig(admin_token=ADMIN)
    url = f"{rig.base_url}/dashboard/data?since={since}"
    async with rig.http.get(url, headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
        assert resp.status == 400
        assert "since" in await resp.text()


async def test_failed_sign_ins_are_throttled(start_rig: StartRig) -> None:
    """After five wrong tokens from one address, even the right one gets 429 with Retry-After
    until the window passes: the token cannot be guessed at line speed."""
    rig = await start_rig(admin_token=ADMIN)
    url = rig.base_url + "/dashboard/login"
    for _ in range(5):
        async with rig.http.post(url, data={"token": "guess"}, allow_redirects=False) as resp:
            assert resp.status == 401
    async with rig.http.post(url, data={"token": ADMIN}, allow_redirects=False) as resp:
        assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0


@pytest.mark.parametrize(("public_url", "secure"), [("https://v.example", True),
                                                    ("http://127.0.0.1:8080", False)])  # fmt: skip
async def test_cookie_secure_flag_follows_public_url(
    start_rig: StartRig, public_url: str, secure: bool
) -> None:
    """The session cookie is Secure exactly when PUBLIC_URL is https, whatever
    X-Forwarded-Proto a client sends."""
    rig = await start_rig(admin_token=ADMIN, public_url=public_url)
    async with rig.http.post(
        rig.base_url + "/dashboard/login", data={"token": ADMIN}, allow_redirects=False,
        headers={"X-Forwarded-Proto": "http" if secure else "https"},
    ) as resp:  # fmt: skip
        assert resp.status == 303
        assert bool(resp.cookies[COOKIE]["secure"]) is secure


def test_short_admin_token_is_refused_at_start() -> None:
    """An ADMIN_TOKEN shorter than 32 characters stops the server from starting, naming it."""
    short = "x" * (MIN_ADMIN_TOKEN_CHARS - 1)
    with pytest.raises(ConfigError) as err:
        load_settings({"ADMIN_TOKEN": short}, env_file=None)
    assert err.value.path == "ADMIN_TOKEN" and "at least 32" in str(err.value)
    assert load_settings({"ADMIN_TOKEN": "x" * 32}, env_file=None).admin_token == "x" * 32
