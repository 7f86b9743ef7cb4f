"""RecordingSink: writes calls and turns to the database as the call goes, off the hot path.

The sink's methods only snapshot the call into a row and enqueue it (bounded queue, never
awaited); one writer task drains the queue in order and commits each batch at once. So a crash
loses at most what was still queued (the turn in progress, a few milliseconds of records).

Rows: the call row is inserted at start (an upsert: a failover leg of the same CallSid takes
over its mode), each turn is inserted when it finishes, and the call row is updated at the end
(counters are added, so a call served by two legs keeps both legs' counts).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import func, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from voiceagent.logging import get_logger
from voiceagent.session.call import CallSession
from voiceagent.session.latency import TurnTiming
from voiceagent.store.schema import COUNTERS, calls, make_engine, migrate, turns

log = get_logger("voiceagent.store")

Op = Literal["start", "turn", "end"]
_RETRIES = (0.2, 0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True, slots=True)
class _Item:
    op: Op
    row: dict[str, Any]
    end: dict[str, Any] | None = None


def _wall(call: CallSession, monotonic: float) -> datetime:
    return datetime.fromtimestamp(call.started_wall + (monotonic - call.started), UTC)


def call_row(call: CallSession) -> dict[str, Any]:
    """The `calls` row of a call as it starts."""
    return {
        "call_sid": call.call_sid,
        "number": call.number,
        "experiment": call.experiment,
        "arm": call.arm,
        "mode": call.mode,
        "failover_from": call.failover_from,
        "started_at": datetime.fromtimestamp(call.started_wall, UTC),
    }


def end_values(call: CallSession) -> dict[str, Any]:
    """What the end of a call (or of one leg of it) adds to its row."""
    ended = call.ended if call.ended is not None else call.started + call.duration_s
    values: dict[str, Any] = {name: getattr(call.counters, name) for name in COUNTERS}
    values.update(
        ended_at=_wall(call, ended),
        end_reason=call.end_reason.value if call.end_reason else "internal_error",
        end_detail=call.end_detail[:200],
        upstream_failure=call.upstream_failure,
        duration_s=call.duration_s,
    )
    return values


def turn_row(call: CallSession, turn: TurnTiming) -> dict[str, Any]:
    """The `turns` row of a finished turn; texts only when the call's plan allows them."""
    row: dict[str, Any] = {
        "call_sid": call.call_sid,
        "mode": call.mode,
        "turn_index": turn.index,
        "kind": turn.kind,
        "at": _wall(call, turn.started),
        "interrupted": turn.interrupted,
        "failed": turn.failed[:32] if turn.failed else None,
        "user_text": turn.user_text if call.record_transcripts else None,
        "agent_text": turn.agent_text if call.record_transcripts else None,
    }
    row.update(turn.figures())
    return row


class RecordingSink:
    """A CallSink persisting calls and turns. `await start()` before, `await stop()` after.

    `database` is a URL (the sink owns and disposes its engine) or an AsyncEngine (yours).
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
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue(maxsize=max_queue)
        self._run_migrations = run_migrations
        self._batch_size = batch_size
        self._flush_timeout = flush_timeout
        self._writer: asyncio.Task[None] | None = None
        self.dropped = 0
        self.written = 0

    # CallSink: snapshot and enqueue, never await.
    def call_started(self, call: CallSession) -> None:
        self._put(_Item("start", call_row(call)))

    def turn_finished(self, call: CallSession, turn: TurnTiming) -> None:
        self._put(_Item("turn", turn_row(call, turn)))

    def call_ended(self, call: CallSession) -> None:
        self._put(_Item("end", call_row(call), end_values(call)))

    def _put(self, item: _Item) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1
            log.error(
                "record_dropped", op=item.op, call_sid=item.row["call_sid"], dropped=self.dropped
            )

    # Lifetime.
    async def start(self) -> None:
        """Migrate the database (unless told not to) and start the writer task."""
        if self._run_migrations:
            await migrate(self.engine)
        self._writer = asyncio.create_task(self._run(), name="record-writer")
        log.info("records_ready", dialect=self.engine.dialect.name)

    async def drained(self) -> None:
        """Wait until everything enqueued so far is committed (or given up)."""
        await self._queue.join()

    async def stop(self) -> None:
        """Flush what is queued, stop the writer, dispose an owned engine."""
        if self._writer is not None:
            await self._queue.put(None)
            try:
                await asyncio.wait_for(asyncio.shield(self._writer), self._flush_timeout)
            except TimeoutError:
                log.error("records_flush_timeout", pending=self._queue.qsize())
                self._writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._writer
            self._writer = None
        if self._owns_engine:
            await self.engine.dispose()

    # The writer.
    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            items = [item for item in batch if item is not None]
            try:
                if items:
                    await self._write_with_retries(items)
            finally:
                for _ in batch:
                    self._queue.task_done()
            if len(items) < len(batch):
                return

    async def _write_with_retries(self, items: list[_Item]) -> None:
        for attempt, pause in enumerate((*_RETRIES, None)):
            try:
                async with self.engine.begin() as conn:
                    await self._write(conn, items)
            except Exception as exc:  # the database is the boundary: never kill the writer
                if pause is None:
                    log.error("records_lost", items=len(items), error=repr(exc), exc_info=True)
                    return
                log.warning("record_write_retry", attempt=attempt + 1, error=repr(exc))
                await asyncio.sleep(pause)
            else:
                self.written += len(items)
                return

    async def _write(self, conn: AsyncConnection, items: list[_Item]) -> None:
        """Starts and ends in queue order, then all turns in one executemany: the same result
        as writing everything in queue order, since a turn row never touches a call row."""
        for item in items:
            if item.op == "start":
                await conn.execute(self._upsert_start(conn, item.row))
            elif item.end is not None:
                await self._write_end(conn, item.row, item.end)
        rows = [item.row for item in items if item.op == "turn"]
        if rows:
            await conn.execute(insert(turns), rows)

    @staticmethod
    def _upsert_start(conn: AsyncConnection, row: dict[str, Any]) -> Any:
        """Insert the call; if its CallSid exists (a failover leg), the new leg takes over."""
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(calls).values(row)
        return stmt.on_conflict_do_update(
            index_elements=[calls.c.call_sid],
            set_={
                "mode": stmt.excluded.mode,
                "failover_from": func.coalesce(stmt.excluded.failover_from, calls.c.failover_from),
                "ended_at": None,
                "end_reason": None,
            },
        )

    @staticmethod
    async def _write_end(conn: AsyncConnection, row: dict[str, Any], end: dict[str, Any]) -> None:
        values: dict[str, Any] = {name: calls.c[name] + end[name] for name in COUNTERS}
        values["duration_s"] = func.coalesce(calls.c.duration_s, 0.0) + end["duration_s"]
        values["upstream_failure"] = func.coalesce(
            end["upstream_failure"], calls.c.upstream_failure
        )
        for name in ("ended_at", "end_reason", "end_detail"):
            values[name] = end[name]
        result = await conn.execute(
            update(calls).where(calls.c.call_sid == row["call_sid"]).values(values)
        )
        if result.rowcount == 0:  # the start row never made it: keep the call anyway
            await conn.execute(insert(calls).values({**row, **end}))
