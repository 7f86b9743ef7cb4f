"""The records writer: its own thread and event loop, so the serving loop never waits on it.

The serving loop only appends to a bounded buffer (`put`, never blocks); the writer thread
commits batches in order, one transaction each. After a failed write the error's code says
whose fault it was (store/records/faults.py; only an error that names no code is settled by
asking the database `SELECT 1`, which a full disk or a read-only database still answers):

- the rows' (the database refused their content): the batch is written again row by row; a
  row still refused is logged once (`record_rejected`, never its values) and skipped, every
  other row is kept;
- the database's (unreachable at start, lost mid-run, stalled, disk full, read-only, busy):
  the batch is retried with backoff while new records wait in the buffer; the outage is
  logged when it starts and when it ends. A full buffer drops new records, counted and logged.

At shutdown the writer flushes within a deadline; what it could not write is counted as lost
and logged. The buffer and its counters (`RecordStats`, which the metrics read):
record_buffer.py.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from voiceagent.logging import clip, get_logger
from voiceagent.store.records.buffer import RecordBuffer, RecordStats
from voiceagent.store.records.faults import Fault, classify
from voiceagent.store.records.rows import Record, error_code, fitted, write
from voiceagent.store.records.schema import migrate

__all__ = ["RecordStats", "RecordWriter"]
log = get_logger("voiceagent.store")

PAUSES = (0.2, 0.5, 1.0, 2.0, 5.0)
"""Seconds between attempts while the database is unreachable (the last one repeats)."""
PROBE_TIMEOUT_S = 5.0
GIL_SWITCH_S = 0.0005
WRITE_TIMEOUT_S = 30.0


class RecordWriter(RecordBuffer):
    """A bounded buffer drained by a thread with its own event loop and engine."""

    def __init__(
        self,
        make_engine: Callable[[], AsyncEngine],
        *,
        max_buffer: int = 10_000,
        batch_size: int = 200,
        run_migrations: bool = True,
        pauses: tuple[float, ...] = PAUSES,
    ) -> None:
        super().__init__(max_buffer=max_buffer, batch_size=batch_size)
        self._make_engine = make_engine
        self._run_migrations = run_migrations
        self._pauses = pauses
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        # The writer shares the GIL with the serving loop: a short switch interval bounds how
        # long a batch of SQL work can hold the loop back (the default is 5 ms).
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_S))
        self._thread = threading.Thread(target=self._main, name="record-writer", daemon=True)
        self._thread.start()

    async def stop(self, flush_timeout: float) -> None:
        """Flush what is buffered within `flush_timeout` seconds, then end the thread."""
        if self._thread is None:  # never started: nothing will write what is buffered
            self._lose(self._drain_buffer())
            return
        self._deadline = time.monotonic() + flush_timeout
        self.finish()
        bound = flush_timeout + PROBE_TIMEOUT_S + WRITE_TIMEOUT_S
        await asyncio.to_thread(self._thread.join, bound)
        if self._thread.is_alive():  # a write hung past every timeout: leave the daemon thread
            log.error("records_writer_stuck", pending=self.pending)
            self.stats.lost += self.pending
        self._thread = None

    # The writer thread.
    def _main(self) -> None:
        with asyncio.Runner() as runner:
            engine = self._make_engine()
            try:
                runner.run(self._prepare(engine))
                while (batch := self.next_batch()) is not None:
                    if self._gave_up():
                        self._lose(batch)
                        continue
                    runner.run(self._flush(engine, batch))
                    self._report_overflow()
            finally:
                self._lose(self._drain_buffer())
                runner.run(engine.dispose())

    async def _prepare(self, engine: AsyncEngine) -> None:
        """Migrate (unless told not to), waiting out an unreachable database."""
        attempt = 0
        while self._run_migrations:
            try:
                await migrate(engine)
            except Exception as exc:  # the database is the boundary: keep the writer alive
                if await self._rows_fault(engine, exc):
                    log.error("records_migration_failed", error=type(exc).__name__,
                              sqlstate=error_code(exc))  # fmt: skip
                    break
                if not self._wait_out(exc, attempt, pending=self._buffer.qsize()):
                    return
                attempt += 1
            else:
                self._back_up()
                break
        log.info("records_ready", dialect=engine.dialect.name)

    async def _flush(self, engine: AsyncEngine, batch: list[Record]) -> None:
        records = [fitted(record) for record in batch]
        attempt = 0
        while records:
            try:
                async with asyncio.timeout(WRITE_TIMEOUT_S), engine.begin() as conn:
                    await write(conn, records)
            except Exception as exc:  # the database is the boundary: keep the writer alive
                if await self._rows_fault(engine, exc):
                    records = await self._write_rows(engine, records)
                elif not self._wait_out(exc, attempt, pending=len(records)):
                    self._lose(records)
                    return
                attempt += 1
            else:
                self._back_up()
                self.settle(len(records), written=len(records))
                return

    async def _write_rows(self, engine: AsyncEngine, records: list[Record]) -> list[Record]:
        """Write one row per transaction, skipping rows the database refuses; returns the rows
        left unwritten if the database went away meanwhile."""
        for index, record in enumerate(records):
            try:
                async with asyncio.timeout(WRITE_TIMEOUT_S), engine.begin() as conn:
                    await write(conn, [record])
            except Exception as exc:  # the database is the boundary: keep the writer alive
                if not await self._rows_fault(engine, exc):
                    return records[index:]
                self.stats.rejected += 1
                self.settle(1)
                log.error(
                    "record_rejected", op=record.op, call_sid=clip(record.call_sid),
                    error=type(exc).__name__, sqlstate=error_code(exc),
                    rejected=self.stats.rejected,
                )  # fmt: skip
            else:
                self.settle(1, written=1)
        return []

    async def _rows_fault(self, engine: AsyncEngine, exc: BaseException) -> bool:
        """Whether a failed write was the rows' fault (False: the database's, an outage)."""
        fault = classify(exc)
        if fault is None:  # the error names no code: the rows' fault if the database answers
            return await self._answers(engine)
        if fault is Fault.ROW:
            self._back_up()
        return fault is Fault.ROW

    async def _answers(self, engine: AsyncEngine) -> bool:
        """Whether the database answers `SELECT 1`."""
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S), engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # any failure to answer SELECT 1 means unreachable
            return False
        self._back_up()
        return True

    def _wait_out(self, exc: BaseException, attempt: int, *, pending: int) -> bool:
        """The database is unreachable: log the outage once, pause; False when stopping past
        the flush deadline (give up)."""
        if self.stats.database_up:
            self.stats.database_up = False
            self.stats.outages += 1
            log.error(
                "records_database_down", error=type(exc).__name__, sqlstate=error_code(exc),
                pending=pending, buffered=self._buffer.qsize(), outages=self.stats.outages,
                message="records wait in the buffer and are written when the database is back",
            )  # fmt: skip
        pause = self._pauses[min(attempt, len(self._pauses) - 1)]
        if not self._stop.is_set():
            self._stop.wait(pause)  # returns early when stop() is called
            return True
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(pause, remaining))
        return True

    def _back_up(self) -> None:
        if not self.stats.database_up:
            self.stats.database_up = True
            log.warning("records_database_up", buffered=self._buffer.qsize())
