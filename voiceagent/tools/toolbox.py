"""A call's tools: declarations for either API, and ``run(call) -> ToolResult``.

The one entry point the modes use. ``run`` never raises for a bad call: an unknown name,
arguments that are not JSON or do not meet the schema (including a ``transfer_call``
destination the number does not list) come back as error results for the model, before any
request is made. Built-ins are pure and return a typed action; HTTP tools go through the
injected ``ToolRunner`` (``HttpToolRunner`` in the app, anything with ``run`` in tests).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import orjson
from jsonschema import Draft202012Validator

from voiceagent.tools.arguments import InvalidArguments, compile_schema, parse_arguments
from voiceagent.tools.calls import EndCall, ToolCall, ToolOutcome, ToolResult, Transfer, failed
from voiceagent.tools.declarations import AnyTool, parameters_of, realtime_tools, router_tools
from voiceagent.tools.language import SetLanguageSpec, set_language_result
from voiceagent.tools.spec import EndCallSpec, HttpToolSpec, TransferCallSpec
from voiceagent.tools.turn_taking import SetTurnTakingSpec, set_turn_taking_result

END_CALL_OUTPUT = (
    "The call ends once your words so far were heard. If you have not said goodbye yet, say "
    "one short goodbye now; otherwise say nothing more."
)


class ToolRunner(Protocol):
    """The seam to HTTP tools (``HttpToolRunner``)."""

    async def run(
        self, spec: HttpToolSpec, call: ToolCall, arguments: Mapping[str, Any]
    ) -> ToolResult: ...


class Toolbox:
    """The tools of one call's plan (``plan.agent.tools``); schemas compiled once."""

    def __init__(
        self,
        specs: Sequence[AnyTool],
        runner: ToolRunner | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.specs = tuple(specs)
        self.runner = runner
        self.clock = clock
        self._by_name: dict[str, tuple[AnyTool, Draft202012Validator]] = {
            s.name: (s, compile_schema(parameters_of(s))) for s in self.specs
        }

    def __bool__(self) -> bool:
        return bool(self.specs)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def realtime_tools(self) -> list[dict[str, Any]]:
        """``session.tools`` for ``session.update``."""
        return realtime_tools(self.specs)

    def router_tools(self) -> list[dict[str, Any]]:
        """``tools`` for the Router request."""
        return router_tools(self.specs)

    def spec(self, name: str) -> AnyTool | None:
        entry = self._by_name.get(name)
        return entry[0] if entry else None

    async def run(self, call: ToolCall) -> ToolResult:
        """Validate and run one call; the result carries its duration (clock milliseconds)."""
        started = self.clock()
        result = await self._run(call)
        return dataclasses.replace(result, duration_ms=(self.clock() - started) * 1000.0)

    async def _run(self, call: ToolCall) -> ToolResult:
        entry = self._by_name.get(call.name)
        if entry is None:
            known = ", ".join(self.names) or "none"
            return failed(
                call, ToolOutcome.UNKNOWN_TOOL,
                f"There is no tool named {call.name!r}. Available tools: {known}.",
                detail=f"unknown tool {call.name[:64]!r}",
            )  # fmt: skip
        spec, validator = entry
        try:
            arguments = parse_arguments(call.arguments, validator)
        except InvalidArguments as exc:
            return failed(
                call, ToolOutcome.INVALID_ARGUMENTS,
                f"Invalid arguments for {spec.name}: {exc}. Fix them and call again, or do "
                "without this tool.",
                detail=str(exc),
            )  # fmt: skip
        if isinstance(spec, EndCallSpec):
            return ToolResult(call, ToolOutcome.OK, _ok(END_CALL_OUTPUT), action=EndCall())
        if isinstance(spec, TransferCallSpec):
            return transfer_result(spec, call, str(arguments["destination"]))
        if isinstance(spec, SetLanguageSpec):
            return set_language_result(spec, call, str(arguments["language"]))
        if isinstance(spec, SetTurnTakingSpec):
            return set_turn_taking_result(spec, call, str(arguments["preset"]))
        if self.runner is None:
            return failed(call, ToolOutcome.UNREACHABLE, f"{spec.name} is not available now.")
        return await self.runner.run(spec, call, arguments)


def transfer_result(spec: TransferCallSpec, call: ToolCall, name: str) -> ToolResult:
    """The ``Transfer`` action for a configured destination name; any other name is refused
    (the schema enum already refuses it: this is the second lock)."""
    destination = spec.destinations.get(name)
    if destination is None:
        allowed = ", ".join(spec.destinations)
        return failed(
            call, ToolOutcome.INVALID_ARGUMENTS,
            f"{name!r} is not a transfer destination. Allowed: {allowed}.",
            detail=f"destination {name[:40]!r} not allowed",
        )  # fmt: skip
    say = destination.announcement
    message = (
        f"Say exactly this, and nothing else: {say!r}. The transfer starts after it."
        if say
        else "Tell the caller in one short sentence that you are transferring them now."
    )
    action = Transfer(name, destination.number, say)
    return ToolResult(call, ToolOutcome.OK, _ok(message, transferring_to=name), action=action)


def _ok(message: str, **fields: str) -> str:
    return orjson.dumps({"ok": True, **fields, "message": message}).decode()
