"""RecordingSink: writes calls and turns to the database as the call goes, off the serving loop.

The sink's methods only snapshot the call into a row and buffer it (bounded, never awaited);
the writer (record_writer.py) commits batches from its own thread and event loop. So records
add no stall to the serving loop, a crash loses at most what was still buffered (a few
milliseconds of records), one bad row costs only that row, and an unreachable database makes
records wait (bounded) instead of being lost. What rows hold: rows.py.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from voiceagent.session.call import CallSession
from voiceagent.session.latency import TurnTiming
from voiceagent.store.records.rows import Record, call_row, end_values, turn_row
from voiceagent.store.records.schema import make_engine, private_engine
from voiceagent.store.records.writer import RecordStats, RecordWriter

__all__ = ["RecordStats", "RecordingSink", "call_row", "end_values", "turn_row"]


class RecordingSink:
    """A CallSink persisting calls and turns. `await start()` before, `await stop()` after.

    `database` is a URL or an AsyncEngine. `engine` is for the caller's event loop (reading
    back; an engine passed in stays the caller's to dispose); the writer thread opens its own
    connections from the same URL and connect arguments. `stats` holds the writer's counters.
    """

    def __init__(
        self,
        database: str | AsyncEngine,
        *,
        max_queue: int = 10_000,
        run_migrations: bool = True,
        batch_size: int = 200,
        flush_timeout: float = 10.0,
    ) -> None:
        self._owns_engine = isinstance(database, str)
        self.engine = make_engine(database) if isinstance(database, str) else database
        self._flush_timeout = flush_timeout
        self._writer = RecordWriter(
            lambda: private_engine(self.engine),
            max_buffer=max_queue,
            batch_size=batch_size,
            run_migrations=run_migrations,
        )

    @property
    def stats(self) -> RecordStats:
        """written, dropped (buffer full), rejected (bad rows), lost, outages, database_up."""
        return self._writer.stats

    @property
    def written(self) -> int:
        return self._writer.stats.written

    @property
    def dropped(self) -> int:
        return self._writer.stats.dropped

    @property
    def pending(self) -> int:
        """Records buffered or being written."""
        return self._writer.pending

    # CallSink: snapshot and buffer, never await.
    def call_started(self, call: CallSession) -> None:
        self._writer.put(Record("start", call_row(call)))

    def turn_finished(self, call: CallSession, turn: TurnTiming) -> None:
        self._writer.put(Record("turn", turn_row(call, turn)))

    def call_ended(self, call: CallSession) -> None:
        self._writer.put(Record("end", call_row(call), end_values(call), tuple(call.events)))

    def recording_ready(
        self, call_sid: str, recording: dict[str, Any], events: tuple[dict[str, Any], ...] = ()
    ) -> None:
        """The call's recording (sid, url, duration) onto its row, with its event if any."""
        row = {"call_sid": call_sid, "recording_sid": recording.get("sid"),
               "recording_url": recording.get("url"),
               "recording_duration_s": recording.get("duration_s")}  # fmt: skip
        self._writer.put(Record("recording", row, None, events))

    def event_timing(self, call_sid: str, placeholder: dict[str, Any]) -> None:
        """When the call's provisional event is due (webhooks/events.py `placeholder_row`)."""
        self._writer.put(Record("event", {"call_sid": call_sid}, None, (placeholder,)))

    def outbound_ended(self, row: dict[str, Any]) -> None:
        """An outbound call's final status (its `outbound_calls` row), never awaiting."""
        self._writer.put(Record("outbound", row))

    # Lifetime.
    async def start(self) -> None:
        """Start the writer thread; it migrates first (unless told not to), waiting out an
        unreachable database while records buffer."""
        self._writer.start()

    async def drained(self) -> None:
        """Wait until everything buffered so far is written (or rejected, or lost)."""
        await self._writer.drained()

    async def stop(self) -> None:
        """Flush what is buffered (within `flush_timeout`), stop the writer, dispose an owned
        engine."""
        await self._writer.stop(self._flush_timeout)
        if self._owns_engine:
            await self.engine.dispose()
