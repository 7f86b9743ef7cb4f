"""`voiceagent simulate --config FILE`: a user's own config rehearsed through the real CLI."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.cli_process import run_cli
from voiceagent.sim.tool_server import ToolServer

NEW = "+14155550123"


def _write(path: Path, numbers: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump({"numbers": numbers}), encoding="utf-8")
    return path


async def test_a_config_of_one_new_number_rehearses_that_number_and_its_tools(
    tmp_path: Path,
) -> None:
    """Only the config's number is called (its dialogue printed, though the config records no
    transcripts), its GET tool really answers, its transfer and end_call run, and a POST tool
    and an unreachable tool are named as not rehearsed."""
    async with ToolServer() as tools:
        config = _write(tmp_path / "mine.yaml", {NEW: {
            "mode": "realtime-passthrough",
            "agent": {"tools": [
                {"name": "end_call"},
                {"name": "transfer_call", "destinations": {"sales": {"number": "+14155550199"}}},
                {"name": "order_status", "description": "An order's status.", "method": "GET",
                 "url": tools.url_for("/orders/{order_id}/status"),
                 "parameters": {"type": "object", "required": ["order_id"], "properties": {
                     "order_id": {"type": "string", "examples": ["A-1234"]}}}},
                {"name": "open_ticket", "description": "Opens a ticket.", "method": "POST",
                 "url": tools.url_for("/orders/status")},
                {"name": "gone", "description": "A tool nobody serves.", "method": "GET",
                 "url": "http://127.0.0.1:9/nothing"},
            ]},
        }})  # fmt: skip
        code, out, err = await run_cli(
            "simulate", "--config", str(config), "--calls", "2", "--seed", "4"
        )
    assert code == 0, err[-2000:]
    assert "+18005550101" not in out and "+18005550103" not in out
    assert out.count(f"\n{NEW}  media-streams") == 5  # 2 calls + 3 tool scenarios
    assert "agent: Hello! How can I help you today?" in out
    assert "tool order_status: tools order_status; the caller hung up" in out
    assert "transfer to sales: tools transfer_call; transferred to sales" in out
    assert "agent ends: tools end_call; the agent ended the call" in out
    assert [(r.method, r.path) for r in tools.requests] == [("GET", "/orders/A-1234/status")]
    assert "tool open_ticket (POST " in out and "only GET tools are called" in out
    assert "tool gone (GET http://127.0.0.1:9/nothing): cannot reach it (127.0.0.1:9" in out
    assert out.index("not rehearsed (") < out.index(f"\n{NEW}  media-streams")
    assert "not rehearsed: 2 (listed at the top)" in out


async def test_every_arm_is_called_and_number_picks_one_number(tmp_path: Path) -> None:
    """With --number only that number rings, and an arm with a tiny weight is still called."""
    config = _write(tmp_path / "ab.yaml", {
        NEW: {"experiment": {"name": "voices", "arms": [
            {"name": "big", "mode": "realtime-passthrough", "weight": 50},
            {"name": "tiny", "mode": "relay-router", "weight": 1},
        ]}},
        "+14155550124": {"mode": "relay-router"},
    })  # fmt: skip
    code, out, err = await run_cli(
        "simulate", "--config", str(config), "--number", NEW, "--calls", "1", "--no-tools"
    )
    assert code == 0, err[-2000:]
    assert "+14155550124" not in out
    assert "arm big (realtime-passthrough): 1 calls" in out
    assert "arm tiny (relay-router): 1 calls" in out
    assert "--calls 1 is fewer than the 2 calls it takes" in out


async def test_a_number_the_config_refuses_is_an_error(tmp_path: Path) -> None:
    """--number naming a number missing from a config that refuses unknown numbers says so."""
    config = _write(tmp_path / "one.yaml", {NEW: {"mode": "relay-router"}})
    code, out, err = await run_cli("simulate", "--config", str(config), "--number", "+15550000")
    assert code == 2 and out == ""
    assert "+15550000: not in the config's numbers (unknown numbers: refuse)" in err
