"""Function calls in an Inworld Realtime session, tracked from server events (docs/protocols.md,
Inworld §1.6).

Pure: ``on_event(event)`` takes any parsed server event and returns the calls that just
became complete. The ``name`` may be missing on ``response.function_call_arguments.done``,
so it is taken from the function-call item announced by ``response.output_item.added`` or
``conversation.item.added`` (by ``call_id``, else by item id). A call is returned once, from
whichever of ``arguments.done`` / ``output_item.done`` comes first; calls of a response that
was cancelled before their arguments were done are dropped (the model never made them).

The follow-up reply: Inworld now starts it by itself after a ``function_call_output``; older
servers wait for ``response.create``. ``needs_follow_up`` is True once every call of the
last tool response has its output sent and no response has been created since; the mode
sends ``response.create`` only if it is still True after a short grace period, so one output
never gets two replies.
"""

from __future__ import annotations

from dataclasses import dataclass

from voiceagent.protocols import inworld_realtime as rt
from voiceagent.tools.calls import ToolCall

_ITEM_EVENTS = (
    rt.ResponseOutputItemAdded,
    rt.ConversationItemAdded,
    rt.ConversationItemDone,
    rt.ResponseOutputItemDone,
)


@dataclass(slots=True)
class _Call:
    call_id: str
    item_id: str | None
    name: str = ""
    arguments: str = ""
    response_id: str | None = None
    complete: bool = False
    output_sent: bool = False


class FunctionCallTracker:
    """Which function calls a session has, which are complete, which still await an output."""

    def __init__(self) -> None:
        self._calls: dict[str, _Call] = {}
        self._by_item: dict[str, str] = {}
        self._done_responses: set[str] = set()
        self._awaiting_follow_up = False

    def on_event(self, event: object) -> list[ToolCall]:
        """Feed one server event; return the calls it completed (usually zero or one)."""
        if isinstance(event, _ITEM_EVENTS):
            return self._on_item(event.item, getattr(event, "response_id", None), event)
        if isinstance(event, rt.FunctionCallArgumentsDelta):
            call = self._find(event.call_id, event.item_id, event.response_id)
            if call is not None and not call.complete:
                call.arguments += event.delta
            return []
        if isinstance(event, rt.FunctionCallArgumentsDone):
            call = self._find(event.call_id, event.item_id, event.response_id, create=True)
            assert call is not None
            call.name = call.name or event.name or ""
            return self._complete(call, event.arguments or call.arguments)
        if isinstance(event, rt.ResponseCreated):
            self._awaiting_follow_up = False
        elif isinstance(event, rt.ResponseDone):
            self._on_response_done(event.response)
        return []

    def output_sent(self, call_id: str) -> None:
        """The mode sent this call's ``function_call_output``."""
        call = self._calls.get(call_id)
        if call is None or call.output_sent:
            return
        call.output_sent = True
        self._check_follow_up(call.response_id)

    @property
    def pending(self) -> tuple[ToolCall, ...]:
        """Complete calls whose output was not sent yet (on barge-in: send them ``cancelled``)."""
        return tuple(_as_call(c) for c in self._calls.values() if c.complete and not c.output_sent)

    @property
    def needs_follow_up(self) -> bool:
        """Every output of the last tool response is sent and no response started since."""
        return self._awaiting_follow_up

    # -- internals ---------------------------------------------------------------------------
    def _on_item(self, item: rt.Item, response_id: str | None, event: object) -> list[ToolCall]:
        if item.type != "function_call":
            return []
        call = self._find(item.call_id, item.id, response_id, create=True)
        assert call is not None
        call.name = call.name or item.name or ""
        done = isinstance(event, rt.ResponseOutputItemDone | rt.ConversationItemDone)
        if done and item.status == "completed" and item.arguments is not None:
            return self._complete(call, item.arguments)
        return []

    def _find(
        self, call_id: str | None, item_id: str | None, response_id: str | None,
        create: bool = False,
    ) -> _Call | None:  # fmt: skip
        key = call_id or (self._by_item.get(item_id) if item_id else None)
        call = self._calls.get(key) if key else None
        if call is None and create:
            key = key or item_id or f"call_{len(self._calls) + 1}"
            call = self._calls[key] = _Call(key, item_id)
        if call is not None:
            if item_id and call.item_id is None:
                call.item_id = item_id
            if call.item_id:
                self._by_item[call.item_id] = call.call_id
            call.response_id = call.response_id or response_id
        return call

    def _complete(self, call: _Call, arguments: str) -> list[ToolCall]:
        if call.complete:
            return []
        call.complete, call.arguments = True, arguments
        return [_as_call(call)]

    def _on_response_done(self, response: rt.ResponseInfo) -> None:
        if response.id is None:
            return
        self._done_responses.add(response.id)
        for key, call in list(self._calls.items()):
            if call.response_id == response.id and not call.complete:
                del self._calls[key]  # cancelled mid-arguments: the model never made this call
        self._check_follow_up(response.id)

    def _check_follow_up(self, response_id: str | None) -> None:
        if response_id is None or response_id not in self._done_responses:
            return
        calls = [c for c in self._calls.values() if c.response_id == response_id]
        if calls and all(c.output_sent for c in calls):
            self._awaiting_follow_up = True


def _as_call(call: _Call) -> ToolCall:
    return ToolCall(call.call_id, call.name, call.arguments)
