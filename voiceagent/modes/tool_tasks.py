"""Tool runs and timers of one call, as tasks of the call's TaskGroup; both modes use it.

A machine asks with commands (`RunTool`, `CancelTool`, `Wake`) and gets the outcome back as
events (`tool_finished(result, now)`, `wake(now)`), whose commands the mode executes. Nothing
here decides anything: it runs, times, cancels, logs (`tool_called`) and counts
(`voiceagent_tool_calls`). The pump loops never wait for a tool: the realtime hot path
(media in, audio out) is untouched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from voiceagent.config import CallPlan
from voiceagent.errors import CallOver
from voiceagent.logging import get_logger
from voiceagent.modes.call_run import CallRun
from voiceagent.runtime import Services
from voiceagent.session.commands import CallCommand, CancelTool, RunTool, Wake
from voiceagent.tools.builtins import with_builtins
from voiceagent.tools.calls import ToolCall, ToolResult
from voiceagent.tools.declarations import AnyTool
from voiceagent.tools.http_runner import HttpToolRunner
from voiceagent.tools.spec import HttpToolSpec, process_environ
from voiceagent.tools.telemetry import log_tool_call
from voiceagent.tools.toolbox import Toolbox

log = get_logger("voiceagent.tools")

Execute = Callable[[list[CallCommand]], Awaitable[bool]]


class ToolMachine(Protocol):
    """What a call's state machine answers to tool results and timers."""

    def tool_finished(self, result: ToolResult, now: float) -> list[CallCommand]: ...

    def wake(self, now: float) -> list[CallCommand]: ...


def call_toolbox(plan: CallPlan, services: Services) -> Toolbox:
    """The call's tools; HTTP tools share the app's HTTP client and environment."""
    specs: tuple[AnyTool, ...] = with_builtins(plan.agent)
    if not any(isinstance(spec, HttpToolSpec) for spec in specs):
        return Toolbox(specs)
    if services.tool_runner is None:  # the app's one runner, made on first use
        services.tool_runner = HttpToolRunner(services.http, process_environ())
    return Toolbox(specs, services.tool_runner)


class ToolTasks:
    """Runs `RunTool` / `CancelTool` / `Wake` for one call (see the module docstring)."""

    def __init__(
        self, run: CallRun, toolbox: Toolbox, machine: ToolMachine, execute: Execute
    ) -> None:
        self.run = run
        self.toolbox = toolbox
        self.machine = machine
        self.execute = execute
        self.group: asyncio.TaskGroup | None = None
        self._tools: dict[str, asyncio.Task[None]] = {}
        self._timers: set[asyncio.Task[None]] = set()

    def handles(self, command: CallCommand) -> bool:
        """Carry out `command` if it is one of ours; False for any other command."""
        if isinstance(command, RunTool):
            self._start(command.call)
        elif isinstance(command, CancelTool):
            self._cancel(command.result)
        elif isinstance(command, Wake):
            self._spawn(self._timers, self._wake(command.after_s))
        else:
            return False
        return True

    def stop(self) -> None:
        """The call is over: cancel what still runs (its tools' results are not wanted)."""
        for task in [*self._tools.values(), *self._timers]:
            task.cancel()

    # -- tasks ----------------------------------------------------------------------------------
    def _start(self, call: ToolCall) -> None:
        self._tools[call.call_id] = self._spawn(None, self._tool(call))

    def _cancel(self, result: ToolResult) -> None:
        task = self._tools.pop(result.call.call_id, None)
        if task is not None:
            task.cancel()
        self._record(result)

    async def _tool(self, call: ToolCall) -> None:
        result = await self.toolbox.run(call)
        if self._tools.pop(call.call_id, None) is None:
            return  # cancelled meanwhile: its `cancelled` result was already recorded
        self._record(result)
        await self._follow(self.machine.tool_finished(result, time.monotonic()))

    async def _wake(self, after_s: float) -> None:
        await asyncio.sleep(after_s)
        await self._follow(self.machine.wake(time.monotonic()))

    async def _follow(self, commands: list[CallCommand]) -> None:
        if commands and not await self.execute(commands):
            raise CallOver

    def _spawn(
        self, keep: set[asyncio.Task[None]] | None, work: Coroutine[Any, Any, None]
    ) -> asyncio.Task[None]:
        assert self.group is not None, "ToolTasks.group is set when the call's TaskGroup opens"
        task = self.group.create_task(work)
        if keep is not None:
            keep.add(task)
            task.add_done_callback(keep.discard)
        return task

    def _record(self, result: ToolResult) -> None:
        log_tool_call(log, result, self.run.call.record_transcripts)
        call = result.call
        self.run.call.note_tool(call.name, result.ok, result.duration_ms, call.arguments)
        metrics = self.run.services.metrics
        if metrics is not None:
            metrics.tool_call(result)
