"""Fetching a call's context from the business, once per call, shared by every instance.

`CallContexts.begin` (at `/voice`) claims the call's fetch in the shared call store and starts
it; `settle` (when the call's stream starts, on any instance) waits for the outcome: the
in-flight fetch of this instance, else the value another instance stores, up to the hook's
timeout. A timeout, a non-2xx answer, a request that fails or an answer that fails validation
settles the call with the YAML settings: logged (no personal data) and counted, never a dead
call. In realtime mode the fetch runs while Twilio opens the Media Streams socket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

import aiohttp
import orjson

from voiceagent.config_models import CallPlan, ContextHook
from voiceagent.logging import get_logger
from voiceagent.store.live.call_context import CallContextStore, Facts
from voiceagent.webhooks.context import (
    CallContext,
    ContextStatus,
    apply_context,
    load_context,
    parse_answer,
)
from voiceagent.webhooks.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, sign

log = get_logger("voiceagent.webhooks")

POLL_S: Final = 0.02
"""How often an instance that did not fetch looks for the stored context."""
GRACE_S: Final = 0.5
"""How long past the hook's timeout a waiting instance looks before using the YAML."""


def context_request(plan: CallPlan, call_sid: str, facts: Facts) -> bytes:
    """The JSON body POSTed to the context webhook."""
    return orjson.dumps(
        {
            "type": "call.context",
            "call_sid": call_sid,
            "from": facts.get("from", ""),
            "to": facts.get("to", plan.number),
            "direction": facts.get("direction", "inbound"),
            "number": plan.number,
            "mode": plan.mode,
            "arm": plan.arm,
            "experiment": plan.experiment,
        }
    )


class CallContexts:
    """The context fetches of one instance (each task held here until it ends)."""

    def __init__(
        self, http: aiohttp.ClientSession, store: CallContextStore, secret: str,
        count: Callable[[str], None] | None = None,
    ) -> None:  # fmt: skip
        self._http = http
        self._store = store
        self._secret = secret
        self._count = count or (lambda outcome: None)
        self._inflight: dict[str, asyncio.Task[CallContext]] = {}

    async def begin(self, plan: CallPlan, call_sid: str, facts: Facts) -> None:
        """Start the call's context fetch if its number has a context hook and no instance
        claimed it yet (returns at once; the fetch runs on)."""
        hook = plan.webhooks.call_context
        if hook is None or call_sid in self._inflight:
            return
        if not await self._store.claim(call_sid):
            return
        task = asyncio.create_task(self._fetch(hook, plan, call_sid, facts))
        self._inflight[call_sid] = task
        task.add_done_callback(lambda _: self._inflight.pop(call_sid, None))

    async def settle(self, plan: CallPlan, call_sid: str) -> CallPlan:
        """The plan the call runs with: the context applied, or the YAML's (placeholders
        filled empty) when there is no hook or no usable answer."""
        hook = plan.webhooks.call_context
        if hook is None:
            return apply_context(plan, None)
        return apply_context(plan, await self.context_of(plan, hook, call_sid))

    async def context_of(self, plan: CallPlan, hook: ContextHook, call_sid: str) -> CallContext:
        task = self._inflight.get(call_sid)
        if task is not None:
            return await asyncio.shield(task)
        stored = load_context(await self._store.get_context(call_sid))
        if stored is not None:
            return stored
        if await self._store.claim(call_sid):  # nobody fetched it (e.g. its plan expired)
            facts = await self._store.get_facts(call_sid) or {}
            return await self._fetch(hook, plan, call_sid, facts)
        deadline = time.monotonic() + hook.timeout_ms / 1000 + GRACE_S
        while time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
            stored = load_context(await self._store.get_context(call_sid))
            if stored is not None:
                return stored
        log.warning("call_context_lost", call_sid=call_sid, number=plan.number)
        self._count(ContextStatus.LOST.value)
        lost = CallContext(status=ContextStatus.LOST)
        await self._store.put_context(call_sid, lost.dump())  # later legs need not wait again
        return lost

    async def _fetch(
        self, hook: ContextHook, plan: CallPlan, call_sid: str, facts: Facts
    ) -> CallContext:
        started = time.monotonic()
        body = context_request(plan, call_sid, facts)
        context, detail = await self._ask(hook, body, call_sid)
        ms = round((time.monotonic() - started) * 1000, 1)
        fields = {"call_sid": call_sid, "number": plan.number, "ms": ms}
        if context.status in (ContextStatus.APPLIED, ContextStatus.REJECTED):
            log.info("call_context_applied", status=context.status.value, **fields)
        else:
            log.warning("call_context_fallback", status=context.status.value, detail=detail,
                        message="the call goes on with the YAML settings", **fields)  # fmt: skip
        self._count(context.status.value)
        await self._store.put_context(call_sid, context.dump())
        return context

    async def _ask(self, hook: ContextHook, body: bytes, call_sid: str) -> tuple[CallContext, str]:
        """POST the request; the settled context and, for a fallback, why (no values)."""
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body),
            EVENT_ID_HEADER: "ctx_" + call_sid,
        }
        try:
            async with asyncio.timeout(hook.timeout_ms / 1000):
                async with self._http.post(
                    hook.url, data=body, headers=headers, allow_redirects=False
                ) as resp:
                    if not 200 <= resp.status < 300:
                        return CallContext(status=ContextStatus.HTTP_ERROR), f"status {resp.status}"
                    raw = await resp.content.read(64 * 1024 + 1)
        except TimeoutError:
            return CallContext(status=ContextStatus.TIMEOUT), f"over {hook.timeout_ms} ms"
        except (aiohttp.ClientError, OSError) as exc:
            return CallContext(status=ContextStatus.HTTP_ERROR), type(exc).__name__
        try:
            answer = parse_answer(raw)
        except ValueError as exc:
            return CallContext(status=ContextStatus.INVALID), str(exc)
        status = ContextStatus.REJECTED if answer.reject is not None else ContextStatus.APPLIED
        return CallContext(status=status, answer=answer), ""

    async def close(self) -> None:
        """Cancel the fetches still running (the app is stopping)."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
