"""Webhook rules without sockets: signatures, context answers and placeholders, retry policy,
the config's webhooks, and what check-config / serve say about a missing secret."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import yaml

from tests.cli_process import run_cli
from tests.rig import rig_config, rig_config_data
from voiceagent.config import parse_config
from voiceagent.errors import ConfigError
from voiceagent.settings import Settings
from voiceagent.store.live.call_context import MemoryCallContext
from voiceagent.webhooks import sign, verify_signature
from voiceagent.webhooks.checks import placeholder_warnings, recording_warnings
from voiceagent.webhooks.context import (
    CallContext,
    ContextStatus,
    apply_context,
    load_context,
    parse_answer,
    render,
)
from voiceagent.webhooks.context_fetch import CallContexts
from voiceagent.webhooks.delivery import RetryPolicy, verdict

SECRET = "s3cret-s3cret-s3cret"
NUMBER = "+18005550141"
HOOKS = {
    "call_context": {"url": "http://crm.test/ctx"},
    "call_events": {"url": "http://crm.test/e"},
}


def test_signature_round_trip() -> None:
    """A signed body verifies; another body, secret, or an old timestamp does not."""
    header = sign(SECRET, b'{"a":1}', now=1_000_000)
    assert verify_signature(SECRET, b'{"a":1}', header, now=1_000_010)
    assert not verify_signature(SECRET, b'{"a":2}', header, now=1_000_010)
    assert not verify_signature("other-secret-value", b'{"a":1}', header, now=1_000_010)
    assert not verify_signature(SECRET, b'{"a":1}', header, now=1_000_000 + 301)
    assert not verify_signature(SECRET, b"x", None)
    assert not verify_signature(SECRET, b"x", "t=abc,v1=00")


def test_answer_validation() -> None:
    """Answers are validated like the YAML: bad agent fields, unknown keys and non-JSON fail."""
    answer = parse_answer(b'{"variables": {"name": "Ada"}, "agent": {"voice": "Sarah"}}')
    assert answer.variables == {"name": "Ada"} and answer.agent.voice == "Sarah"
    for bad in (b"nope", b"[]", b'{"agent": {"temperature": 5}}', b'{"extra": 1}',
                b'{"variables": {"1bad": "x"}}', b'{"reject": {"message": ""}}'):  # fmt: skip
        with pytest.raises(ValueError):
            parse_answer(bad)


def test_apply_context_fills_placeholders() -> None:
    """Variables fill `{{name}}` in instructions and greeting; unknown ones render empty."""
    config = rig_config(**{NUMBER: {"mode": "relay-router", "webhooks": HOOKS, "agent": {
        "instructions": "Help {{name}} ({{tier}}).", "greeting": "Hi {{ name }}!"}}})  # fmt: skip
    plan = config.plan_for(NUMBER, "CA" + "1" * 32)
    assert plan is not None
    bare = apply_context(plan, None)
    assert (bare.agent.instructions, bare.agent.greeting) == ("Help  ().", "Hi !")
    answer = parse_answer(b'{"variables": {"name": "Ada"}, "agent": {"voice": "Sarah"}}')
    used = apply_context(plan, CallContext(status=ContextStatus.APPLIED, answer=answer))
    assert used.agent.instructions == "Help Ada ()." and used.agent.greeting == "Hi Ada!"
    assert used.agent.voice == "Sarah" and used.variables == {"name": "Ada"}
    assert render("{{a}}{{b}}", {"a": "x"}) == "x"


def test_retry_policy() -> None:
    """Backoff doubles from the first delay; past the window the event is given up."""
    policy = RetryPolicy(first_s=10, max_s=100)
    created = now = datetime(2026, 1, 1, tzinfo=UTC)
    assert policy.next_at(1, created, now) == now + timedelta(seconds=10)
    assert policy.next_at(3, created, now) == now + timedelta(seconds=40)
    assert policy.next_at(5, created, now) is None  # 160 s would pass the 100 s window
    assert [verdict(s) for s in (200, 204, 410, 400, 408, 429, 503, None)] == [
        "delivered", "delivered", "failed", "failed", "pending", "pending", "pending", "pending"
    ]  # fmt: skip


def test_number_webhooks_override_top_level() -> None:
    """A number's webhooks replace the top-level ones key by key."""
    data = rig_config_data(**{NUMBER: {"mode": "relay-router", "webhooks": {
        "call_events": {"url": "http://number.test/e"}}}})  # fmt: skip
    data["webhooks"] = HOOKS
    config = parse_config(data)
    plan = config.plan_for(NUMBER, "CA" + "2" * 32)
    assert plan is not None and plan.webhooks.call_events is not None
    assert plan.webhooks.call_events.url == "http://number.test/e"
    assert plan.webhooks.call_context is not None
    with pytest.raises(ConfigError, match=r"numbers\.\+18005550141\.webhooks\.call_events\.url"):
        parse_config(rig_config_data(**{NUMBER: {"mode": "relay-router", "webhooks": {
            "call_events": {"url": "ftp://x"}}}}))  # fmt: skip


def test_secret_required() -> None:
    """Webhooks in the config need WEBHOOK_SIGNING_SECRET; events also need DATABASE_URL."""
    with pytest.raises(ConfigError, match="WEBHOOK_SIGNING_SECRET"):
        Settings().require_webhook_secret(True)
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Settings(database_url="", webhook_signing_secret=SECRET).require_webhook_secret(True, True)
    Settings(webhook_signing_secret=SECRET).require_webhook_secret(True, True)
    Settings().require_webhook_secret(False)


def test_placeholder_warnings() -> None:
    """Placeholders on a number without a context webhook are warned about."""
    config = rig_config(**{NUMBER: {"mode": "relay-router", "agent": {"greeting": "Hi {{x}}"}}})
    assert placeholder_warnings(config) == [
        f"numbers.{NUMBER}.agent.greeting: {{{{x}}}} render empty: the number has no "
        "webhooks.call_context to fill them"
    ]


def test_recording_without_account_is_warned() -> None:
    """A number recording calls without TWILIO_ACCOUNT_SID is warned about."""
    config = rig_config(**{NUMBER: {"mode": "relay-router", "recording": {"enabled": True}}})
    assert recording_warnings(Settings(), config) == [
        f"numbers.{NUMBER}.recording: enabled, but TWILIO_ACCOUNT_SID is not set: calls are "
        "not recorded"
    ]
    assert recording_warnings(Settings(twilio_account_sid="AC" + "1" * 32), config) == []


async def test_check_config_names_missing_secret(tmp_path: Path) -> None:
    """check-config fails naming WEBHOOK_SIGNING_SECRET when the config has webhooks."""
    path = tmp_path / "va.yaml"
    data = rig_config_data(**{NUMBER: {"mode": "relay-router", "webhooks": HOOKS}})
    path.write_text(yaml.safe_dump(data))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOK_")}
    code, _, err = await run_cli("check-config", str(path), env=env)
    assert code == 1 and "WEBHOOK_SIGNING_SECRET" in err
    env["WEBHOOK_SIGNING_SECRET"] = SECRET
    code, _, err = await run_cli("check-config", str(path), env=env)
    assert code == 0, err


async def test_context_claimed_elsewhere_and_never_stored_is_lost() -> None:
    """An instance waiting for a context another instance claimed but never stored uses the
    YAML after the hook's timeout, and keeps that outcome so later legs do not wait again."""
    store = MemoryCallContext()
    hook = {"call_context": {"url": "http://crm.test/ctx", "timeout_ms": 50}}
    config = rig_config(**{NUMBER: {"mode": "relay-router", "webhooks": hook,
                                    "agent": {"greeting": "Hi {{x}}"}}})  # fmt: skip
    plan = config.plan_for(NUMBER, "CA" + "3" * 32)
    assert plan is not None
    sid = "CA" + "3" * 32
    assert await store.claim(sid)  # the instance that answered /voice, then died
    async with aiohttp.ClientSession() as http:
        contexts = CallContexts(http, store, SECRET)
        started = time.monotonic()
        used = await contexts.settle(plan, sid)
        assert used.agent.greeting == "Hi " and time.monotonic() - started >= 0.5
        stored = load_context(await store.get_context(sid))
        assert stored is not None and stored.status is ContextStatus.LOST
        started = time.monotonic()
        await contexts.settle(plan, sid)
        assert time.monotonic() - started < 0.1
