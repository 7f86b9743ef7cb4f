"""The tool scenarios of `voiceagent simulate`: in each mode, a caller who gets an answer from
an HTTP tool, one who is transferred, and one whose call the agent ends.

The sample config (`rehearsal.yaml`) gives one realtime and one relay number `end_call`,
`transfer_call` and a `get_weather` HTTP tool at TOOL_SERVER; the rehearsal runs a
`ToolServer` and points the tool at it (`rehearsal_config`). The fakes call the tools on the
scenario's words (`SCRIPTS`); the realtime fake hears each caller's words by CallSid.
`Endings` collects how each call ended, server side, for the printed lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from voiceagent.config import Config, load_config, parse_config
from voiceagent.session.call import CallSession, CallSink
from voiceagent.session.latency import TurnTiming
from voiceagent.sim.fake_tool_calls import ScriptedToolCall
from voiceagent.sim.script import HangUp, Listen, Pause, Say, Step

TOOL_SERVER = "http://tools.rehearsal.invalid"
"""Where the sample config's HTTP tool points; the rehearsal's ToolServer stands in for it."""
TOOL_NUMBERS = ("+18005550104", "+18005550105")  # realtime, relay: numbers with tools


@dataclass(frozen=True, slots=True)
class Scenario:
    """One tool scenario: its name and what the caller says."""

    name: str
    said: str


SCENARIOS = (
    Scenario("tool answer", "What is the weather in Paris today?"),
    Scenario("transferred", "Can I talk to a person, please?"),
    Scenario("agent ends", "That's all I needed, thanks. Bye!"),
)
SCRIPTS = (
    ScriptedToolCall(
        "weather", "get_weather", {"city": "Paris"}, say="Let me check.",
        answer="It's {data[forecast]} and {data[temperature_c]} degrees in {data[city]}.",
    ),
    ScriptedToolCall(
        "a person", "transfer_call", {"destination": "front_desk"},
        answer="Connecting you to our front desk. One moment, please.",
    ),
    ScriptedToolCall("bye", "end_call", {}, say="Goodbye, and thanks for calling!",
                     answer="Take care."),
)  # fmt: skip


def scenario_script(scenario: Scenario) -> list[Step]:
    """Listen to the greeting, say the line, listen to the answer (a tool's answer may follow
    the agent's first words), then stay on the line until the agent or the caller ends it."""
    return [Listen(), Say(scenario.said, ms=1200, seed=7), Listen(), Pause(800), Listen(),
            Pause(2500), HangUp()]  # fmt: skip


def rehearsal_config(path: Path, tool_server: str, servers: dict[str, str] | None = None) -> Config:
    """The YAML (checked as it is first) with TOOL_SERVER replaced by the running server (and
    each key of `servers`, e.g. the webhooks' stand-in host, by its value)."""
    config = load_config(path)
    text = path.read_text(encoding="utf-8")
    swaps = {TOOL_SERVER: tool_server, **(servers or {})}
    if not any(host in text for host in swaps):
        return config
    for host, url in swaps.items():
        text = text.replace(host, url)
    return parse_config(yaml.safe_load(text), str(path))


class Endings:
    """The app's sink, wrapped: how each call ended and which tools it called."""

    def __init__(self, inner: CallSink) -> None:
        self.inner = inner
        self.calls: dict[str, str] = {}

    def call_started(self, call: CallSession) -> None:
        self.inner.call_started(call)

    def turn_finished(self, call: CallSession, turn: TurnTiming) -> None:
        self.inner.turn_finished(call, turn)

    def call_ended(self, call: CallSession) -> None:
        self.calls[call.call_sid] = describe(call)
        self.inner.call_ended(call)


def describe(call: CallSession) -> str:
    """ "tools get_weather; ended by the caller" / "...; transferred to front_desk" ..."""
    names = [
        str(c["function"]["name"])
        for m in call.history.messages()
        for c in m.get("tool_calls") or ()
    ]
    ended = {
        "caller": "the caller hung up",
        "end_call": "the agent ended the call",
        "transfer": f"transferred to {call.transfer}",
    }.get(call.ended_by, f"ended: {call.ended_by}")
    return f"tools {', '.join(names) or '-'}; {ended}"
