"""How the fake Inworld models call tools: a script, per-session state and the Realtime events.

A ``ScriptedToolCall`` maps a phrase in the caller's words to a call (name and arguments),
optionally with words said first in the same response. The fakes only call a tool the client
declared (a real model cannot call an undeclared one), and only once per caller turn.

``FakeToolState`` is the Realtime fake's bookkeeping, pure: which calls await an output, which
outputs no reply has used yet, and the follow-up rule. Inworld now starts the follow-up reply
by itself once every call of a response has its output (``follow_up="auto"``); older servers
wait for ``response.create`` (``follow_up="response_create"``). Either way one output never
gets two replies: a ``response.create`` with nothing new since an automatic follow-up is
ignored (and counted), and one sent while a response runs gets the
``conversation_already_has_active_response`` error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

FollowUp = Literal["auto", "response_create"]
AUTO_TRIGGER = "function_call_output"


@dataclass(frozen=True, slots=True)
class ScriptedToolCall:
    """When the caller's words contain ``phrase`` (case-insensitive), call ``name`` with
    ``arguments`` (a dict, or a raw string to send broken JSON), saying ``say`` first;
    ``answer`` words the follow-up to this tool's output (else the fake's ``tool_answer``)."""

    phrase: str
    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    say: str = ""
    answer: str | None = None

    @property
    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return orjson.dumps(self.arguments).decode()


def match_tool_call(
    scripts: tuple[ScriptedToolCall, ...], text: str, declared: set[str]
) -> ScriptedToolCall | None:
    """The first script whose phrase is in ``text`` and whose tool the client declared."""
    lowered = text.lower()
    return next((s for s in scripts if s.phrase.lower() in lowered and s.name in declared), None)


def tool_answer(
    template: str, outputs: list[tuple[str, str]], scripts: tuple[ScriptedToolCall, ...] = ()
) -> str:
    """The follow-up reply's words: ``template`` (or, for one output, its script's
    ``answer``) with ``{name}``, ``{output}`` (the outputs joined, each cut to 300
    characters) and ``{data[key]}`` (a field of a JSON-object output)."""
    names = ", ".join(name for name, _ in outputs)
    text = " ".join(output[:300] for _, output in outputs)
    if len(outputs) == 1:
        own = next((s.answer for s in scripts if s.name == names and s.answer is not None), None)
        template = own if own is not None else template
    try:
        data = orjson.loads(outputs[0][1]) if len(outputs) == 1 else {}
    except orjson.JSONDecodeError:
        data = {}
    try:
        return template.format(name=names, output=text, data=data)
    except (KeyError, IndexError, TypeError, ValueError):
        return text  # a template asking for a field this output lacks


class FakeToolState:
    """The tool side of one fake Realtime session (no I/O)."""

    def __init__(self, scripts: tuple[ScriptedToolCall, ...], follow_up: FollowUp) -> None:
        self.scripts = scripts
        self.follow_up = follow_up
        self.declared: set[str] = set()
        self.awaiting: dict[str, str] = {}  # call_id -> name, no output yet
        self.outputs: list[tuple[str, str]] = []  # (name, output) no reply has used yet
        self.names: dict[str, str] = {}  # call_id -> name, every call made
        self.checked_texts = 0  # user texts already considered for a tool call
        self.new_input = False  # user input or an output since the last response started
        self.last_trigger = ""

    def on_session_tools(self, tools: Any) -> None:
        if isinstance(tools, list):
            self.declared = {str(t.get("name")) for t in tools if isinstance(t, dict)}

    def on_user_text(self) -> None:
        self.new_input = True

    def tool_for(self, user_texts: list[str]) -> ScriptedToolCall | None:
        """The call to make for caller words not yet considered, if a script matches."""
        fresh, self.checked_texts = user_texts[self.checked_texts :], len(user_texts)
        return next(
            (m for t in reversed(fresh) if (m := match_tool_call(self.scripts, t, self.declared))),
            None,
        )

    def call_made(self, call_id: str, name: str) -> None:
        self.awaiting[call_id] = name
        self.names[call_id] = name

    def on_output(self, call_id: str, output: str) -> bool:
        """Record an output; True when it is time for Inworld's automatic follow-up."""
        self.new_input = True
        self.awaiting.pop(call_id, None)
        self.outputs.append((self.names.get(call_id, "tool"), output))
        return self.follow_up_due()

    def follow_up_due(self) -> bool:
        """Automatic follow-up owed: outputs no reply used, and no call still awaiting one."""
        return self.follow_up == "auto" and bool(self.outputs) and not self.awaiting

    def ignore_response_create(self) -> bool:
        """A ``response.create`` with nothing new since the automatic follow-up started."""
        return self.last_trigger == AUTO_TRIGGER and not self.new_input

    def response_started(self, trigger: str) -> list[tuple[str, str]]:
        """A response starts: it uses (and takes) the outputs no reply has used yet."""
        self.last_trigger, self.new_input = trigger, False
        outputs, self.outputs = self.outputs, []
        return outputs


def function_call_events(
    response_id: str, item_id: str, call_id: str, script: ScriptedToolCall,
    output_index: int, piece_chars: int = 8, name_on_done: bool = True,
) -> list[dict[str, Any]]:  # fmt: skip
    """A function call as docs/protocols.md, Inworld §1.6 shows it: the item added (in the response
    and the conversation), the arguments in pieces, their ``done`` (``name`` left out when
    ``name_on_done`` is False, as Inworld may), and the item done."""
    arguments = script.arguments_json
    item = {"id": item_id, "type": "function_call", "status": "in_progress",
            "call_id": call_id, "name": script.name, "arguments": ""}  # fmt: skip
    ids = {"response_id": response_id, "item_id": item_id, "call_id": call_id}
    events: list[dict[str, Any]] = [
        {"type": "response.output_item.added", "response_id": response_id,
         "output_index": output_index, "item": item},
        {"type": "conversation.item.added", "previous_item_id": None, "item": item},
    ]  # fmt: skip
    step = max(1, piece_chars)
    for start in range(0, len(arguments), step):
        piece = arguments[start : start + step]
        events.append({"type": "response.function_call_arguments.delta", **ids, "delta": piece})
    done: dict[str, Any] = {"type": "response.function_call_arguments.done", **ids}
    if name_on_done:
        done["name"] = script.name
    events.append({**done, "arguments": arguments})
    completed = {**item, "status": "completed", "arguments": arguments}
    events.append({"type": "response.output_item.done", "response_id": response_id,
                   "output_index": output_index, "item": completed})  # fmt: skip
    return events


def function_call_item(item_id: str, call_id: str, script: ScriptedToolCall) -> dict[str, Any]:
    """The completed item as ``response.done`` lists it in ``output``."""
    return {"id": item_id, "type": "function_call", "status": "completed", "call_id": call_id,
            "name": script.name, "arguments": script.arguments_json}  # fmt: skip
