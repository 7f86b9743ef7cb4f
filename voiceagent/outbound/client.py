"""The CLI's side of `POST /calls` and `GET /calls/{sid}`: a running server places the calls.

The server holds the rules, the pacing and the shared call state, so `voiceagent call` is its
client (ADMIN_TOKEN bearer), never a second dialler with its own limits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

FINAL = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
MACHINE = frozenset(
    {"machine_end_beep", "machine_end_silence", "machine_end_other", "machine_start"}
)


@dataclass(frozen=True, slots=True)
class Placed:
    """A dial's answer: the CallSid, or the refusal (``error`` kind and message)."""

    call_sid: str = ""
    error: str = ""
    message: str = ""
    status: int = 0


def outcome_of(call: Mapping[str, Any]) -> str:
    """A final call's outcome for counts: its status, ``voicemail`` when a machine answered."""
    status = str(call.get("status", ""))
    if status == "completed" and call.get("answered_by") in MACHINE:
        return "voicemail"
    return status


class CallsClient:
    """Talks to one server's outbound endpoints."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self.http, self.base_url = http, base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    async def place(self, from_: str, to: str, variables: Mapping[str, str]) -> Placed:
        body = {"from": from_, "to": to, "variables": dict(variables)}
        async with self.http.post(
            self.base_url + "/calls", json=body, headers=self.headers
        ) as resp:
            answer = await _json(resp)
        if resp.status == 201:
            return Placed(call_sid=str(answer.get("call_sid", "")), status=201)
        return Placed(error=str(answer.get("error", f"http_{resp.status}")),
                      message=str(answer.get("message", "")), status=resp.status)  # fmt: skip

    async def show(self, call_sid: str) -> dict[str, Any]:
        url = f"{self.base_url}/calls/{call_sid}"
        async with self.http.get(url, headers=self.headers) as resp:
            return await _json(resp) if resp.status == 200 else {"status": "unknown"}

    async def follow(
        self, call_sid: str, poll_s: float = 1.0, on_change: Any = None
    ) -> dict[str, Any]:
        """Poll a call until it has a final status; ``on_change(call)`` on each change."""
        seen: tuple[object, ...] = ()
        while True:
            call = await self.show(call_sid)
            now = (call.get("status"), call.get("answered_by"))
            if now != seen and on_change is not None:
                on_change(call)
            seen = now
            if call.get("final") or call.get("status") in FINAL:
                return call
            await asyncio.sleep(poll_s)


async def _json(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        body = await resp.json(content_type=None)
    except ValueError:
        return {"error": f"http_{resp.status}", "message": (await resp.text())[:300]}
    return body if isinstance(body, dict) else {}
