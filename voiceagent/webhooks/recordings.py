"""Call recordings: started through Twilio's REST API when a recorded number's stream starts,
reported by Twilio's signed `/recording-status` callback, kept on the call's record and told
to the business in `call.ended` (when known by then) or in a later `call.recording_ready`.

Whichever comes second of the call's end and the recording's completion sends it: each side
notes itself in the shared call store first, then looks for the other (so at least one sees
both, on any instance; both may, and then the business gets the URL twice, never zero times).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from voiceagent.config_models import CallPlan
from voiceagent.errors import ConfigError, TwilioApiError
from voiceagent.logging import get_logger
from voiceagent.settings import Settings
from voiceagent.store.live.call_context import CallContextStore
from voiceagent.store.records.sink import RecordingSink
from voiceagent.transport.twilio_rest import TwilioRest, TwilioRestClient, credentials_from
from voiceagent.webhooks.events import outbox_row, recording_ready_payload

log = get_logger("voiceagent.recordings")
ENDED, RECORDING = "ended", "recording"


def rest_client(settings: Settings) -> TwilioRest | None:
    """The REST client when credentials are set (None otherwise: recordings unavailable)."""
    if not settings.twilio_account_sid:
        return None
    try:
        return TwilioRestClient(credentials_from(settings))
    except ConfigError as exc:
        log.error("twilio_rest_unavailable", error=str(exc))
        return None


def recording_from_form(form: dict[str, str]) -> dict[str, Any] | None:
    """The completed recording a `/recording-status` callback reports (None otherwise)."""
    if form.get("RecordingStatus") != "completed" or not form.get("RecordingUrl"):
        return None
    try:
        duration = float(form.get("RecordingDuration", "") or 0)
    except ValueError:
        duration = 0.0
    return {
        "sid": form.get("RecordingSid", "")[:40],
        "url": form["RecordingUrl"][:1000],
        "duration_s": duration,
        "channels": form.get("RecordingChannels", ""),
    }


class Recordings:
    """Starts recordings and settles their reports (one per app)."""

    def __init__(
        self, rest: TwilioRest | None, store: CallContextStore, public_url: str,
        records: RecordingSink | None,
    ) -> None:  # fmt: skip
        self._rest, self._store, self._records = rest, store, records
        self._callback = public_url + "/recording-status"
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, plan: CallPlan, call_sid: str) -> None:
        """Ask Twilio to record the call if its number says so (does not wait)."""
        if not plan.recording.enabled:
            return
        if self._rest is None:
            log.warning("recording_unavailable", why="TWILIO_ACCOUNT_SID is not set")
            return
        task = asyncio.create_task(self._start(self._rest, plan, call_sid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start(self, rest: TwilioRest, plan: CallPlan, call_sid: str) -> None:
        try:
            info = await rest.start_recording(
                call_sid, callback_url=self._callback, channels=plan.recording.channels
            )
        except TwilioApiError as exc:
            log.warning("recording_start_failed", status=exc.status, code=exc.code)
            return
        log.info("recording_started", recording_sid=info.sid)

    async def recording_of(self, call_sid: str) -> dict[str, Any] | None:
        """The call's completed recording, if reported yet (the call's end asks)."""
        await self._store.put_note(call_sid, ENDED, b"1")
        data = await self._store.get_note(call_sid, RECORDING)
        return orjson.loads(data) if data else None

    async def completed(self, call_sid: str, recording: dict[str, Any]) -> None:
        """Twilio reported the recording: keep it on the record; if the call already ended,
        its `call.recording_ready` event goes out (with the record, one transaction)."""
        await self._store.put_note(call_sid, RECORDING, orjson.dumps(recording))
        events: tuple[dict[str, Any], ...] = ()
        facts = await self._store.get_facts(call_sid) or {}
        url = facts.get("events_url")
        if url and await self._store.get_note(call_sid, ENDED):
            payload = recording_ready_payload(call_sid, facts.get("number", ""), recording)
            events = (outbox_row(payload, url),)
        if self._records is not None:
            self._records.recording_ready(call_sid, recording, events)
        log.info(
            "recording_completed", duration_s=recording["duration_s"], sends_event=bool(events)
        )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._rest is not None:
            await self._rest.close()
