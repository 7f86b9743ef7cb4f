"""`voiceagent twilio numbers [--apply]` through the real CLI against the fake Twilio REST API."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from tests.cli_process import run_cli
from voiceagent.sim.fake_twilio_rest import FakeTwilioRest

PUBLIC = "https://voice.example.com"
NEW = "+14155550123"  # configured and owned, pointing elsewhere
NOT_OWNED = "+14155550124"  # configured, not the account's
STRAY = "+14155550177"  # owned, points here, not configured
OTHER = "+14155550188"  # owned, points elsewhere, not configured


def _env(fake: FakeTwilioRest, config: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PUBLIC_URL": PUBLIC, "TWILIO_ACCOUNT_SID": fake.account_sid,
            "TWILIO_AUTH_TOKEN": fake.auth_token, "TWILIO_API_BASE_URL": fake.url,
            "VOICEAGENT_CONFIG": str(config), **extra}  # fmt: skip


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "mine.yaml"
    numbers = {NEW: {"mode": "realtime-passthrough"}, NOT_OWNED: {"mode": "relay-router"}}
    path.write_text(yaml.safe_dump({"numbers": numbers}), encoding="utf-8")
    return path


async def test_numbers_lists_what_differs_then_apply_sets_it(tmp_path: Path) -> None:
    """The listing shows Twilio's values beside the needed ones and changes nothing; --apply
    sets voice URL, method and the given fallback; a second listing says ok; numbers the
    account lacks and stray numbers pointing here are named, others are not."""
    async with FakeTwilioRest(numbers=[OTHER]) as fake:
        mine = fake.add_number(NEW, voice_url="https://old.example.com/answer")
        mine.voice_method = "GET"
        fake.add_number(STRAY, voice_url=PUBLIC + "/voice")
        env = _env(fake, _config(tmp_path))

        code, out, err = await run_cli("twilio", "numbers", env=env)
        assert code == 1, err
        assert f"{NEW}  {mine.sid}  needs changes" in out
        assert f"voice URL        https://old.example.com/answer  ->  {PUBLIC}/voice" in out
        assert "voice method     GET  ->  POST" in out
        assert "fallback URL     (none)\n" in out and "note: no fallback URL" in out
        assert f"{NOT_OWNED}  not a number of this Twilio account" in out
        assert f"{STRAY}  " in out and "is not in the config" in out
        assert OTHER not in out
        assert {r.method for r in fake.received} == {"GET"}

        code, out, err = await run_cli(
            "twilio",
            "numbers",
            "--apply",
            "--fallback-url",
            "https://backup.example.net/voice",
            env=env,
        )
        assert code == 1, err  # a configured number is still not the account's
        assert f"{NEW}  {mine.sid}  updated" in out
        assert (mine.voice_url, mine.voice_method) == (PUBLIC + "/voice", "POST")
        assert mine.voice_fallback_url == "https://backup.example.net/voice"

        code, out, _ = await run_cli("twilio", "numbers", env=env)
        assert f"{NEW}  {mine.sid}  ok" in out and "note:" not in out


async def test_missing_account_sid_is_named_in_one_line(tmp_path: Path) -> None:
    """Without TWILIO_ACCOUNT_SID the command says which setting to fill, and exits 2."""
    async with FakeTwilioRest() as fake:
        env = _env(fake, _config(tmp_path), TWILIO_ACCOUNT_SID="")
        code, out, err = await run_cli("twilio", "numbers", env=env)
    assert code == 2 and out == ""
    assert err.strip() == (
        "voiceagent twilio numbers: TWILIO_ACCOUNT_SID: must be the account SID (AC...)"
    )


async def test_wrong_credentials_are_twilios_refusal_not_a_traceback(tmp_path: Path) -> None:
    """A wrong auth token ends with Twilio's authentication error on one line."""
    async with FakeTwilioRest() as fake:
        env = _env(fake, _config(tmp_path), TWILIO_AUTH_TOKEN="wrong")
        code, out, err = await run_cli("twilio", "numbers", env=env)
    assert code == 2 and out == ""
    assert err.startswith("voiceagent twilio numbers: Twilio REST API HTTP 401 (error 20003)")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


async def test_a_fallback_url_that_is_not_a_url_is_refused_before_any_request(
    tmp_path: Path,
) -> None:
    """--fallback-url without a scheme is a usage error naming the value; Twilio is not asked."""
    async with FakeTwilioRest() as fake:
        env = _env(fake, _config(tmp_path))
        code, out, err = await run_cli(
            "twilio", "numbers", "--apply", "--fallback-url", "backup.example.net", env=env
        )
        assert fake.received == []
    assert code == 2 and out == ""
    assert "'backup.example.net' is not an absolute https:// URL" in err
