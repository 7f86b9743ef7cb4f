"""The tool side of `voiceagent simulate`: the scenario callers' script, the config with the
sample's tool server filled in, which HTTP tools can be called, and how each call ended.

A config's HTTP tools under TOOL_SERVER (the sample's `get_weather`) are served by the
rehearsal's own `ToolServer` (`rehearsal_config`). Any other HTTP tool is called for real only
if it is safe and reachable (`check_http_tools`: a GET, whose host accepts a TCP connection);
the rest are left out with a warning. `Endings` collects how each call ended, server side.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from voiceagent.config import Config, load_config, parse_config
from voiceagent.session.call import CallSession, CallSink
from voiceagent.session.latency import TurnTiming
from voiceagent.sim.rehearsal_plan import TOOL_SERVER, RehearsalPlan, Scenario
from voiceagent.sim.script import HangUp, Listen, Pause, Say, Step

CONNECT_TIMEOUT_S = 2.0


def scenario_script(scenario: Scenario) -> list[Step]:
    """Listen to the greeting, say the line, listen to the answer (a tool's answer may follow
    the agent's first words), then stay on the line until the agent or the caller ends it."""
    return [Listen(), Say(scenario.said, ms=1200, seed=7), Listen(), Pause(800), Listen(),
            Pause(2500), HangUp()]  # fmt: skip


def rehearsal_config(path: Path, tool_server: str, hooks_base: str | None = None) -> Config:
    """The YAML (checked as it is first) with TOOL_SERVER replaced by the running server, every
    webhook pointed at the rehearsal's own receiver at `hooks_base` (a rehearsal calls no
    business system), and transcripts recorded for every number: the rehearsal prints what
    each caller heard, and its records are a temporary file."""
    load_config(path)
    text = path.read_text(encoding="utf-8").replace(TOOL_SERVER, tool_server)
    data = yaml.safe_load(text) or {}
    data["defaults"] = {**(data.get("defaults") or {}), "record_transcripts": True}
    entries = [e for e in (data.get("numbers") or {}).values() if isinstance(e, dict)]
    for entry in entries:
        entry.pop("record_transcripts", None)
    if hooks_base is not None:
        for holder in (data, *entries):
            _local_hooks(holder.get("webhooks"), hooks_base)
    return parse_config(data, str(path))


def _local_hooks(hooks: Any, base: str) -> None:
    """Point a `webhooks:` entry's URLs at the rehearsal's receiver (`/context`, `/events`)."""
    if not isinstance(hooks, dict):
        return
    for key, path in (("call_context", "/context"), ("call_events", "/events")):
        if isinstance(hooks.get(key), dict):
            hooks[key]["url"] = base + path


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


async def check_http_tools(plan: RehearsalPlan) -> None:
    """Leave out (with a warning) the scenarios of HTTP tools the rehearsal must not or cannot
    call: any method but GET (it could change data), or a host that refuses a TCP connection."""
    tools = {(t.name, t.url, t.method): t for _, _, s in plan.scenarios if (t := s.http)}
    for tool in tools.values():
        if tool.url.startswith(TOOL_SERVER):
            continue
        if tool.method != "GET":
            plan.drop_http_tool(tool, "only GET tools are called (it could change data)")
            continue
        problem = await unreachable(tool.url)
        if problem:
            plan.drop_http_tool(tool, f"cannot reach it ({problem})")


async def unreachable(url: str) -> str:
    """Why a TCP connection to the URL's host and port fails ("" when it succeeds)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
    except TimeoutError:
        return f"{host}:{port} did not answer within {CONNECT_TIMEOUT_S:g} s"
    except OSError as exc:
        return f"{host}:{port}: {exc.strerror or exc}"
    writer.close()
    return ""
