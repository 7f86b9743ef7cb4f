"""The records buffer: the bounded queue between the serving loop and the writer thread.

The serving loop only `put`s (never blocks, never wakes the writer; a full buffer drops the
record, counted and logged); the writer thread takes what has come every LINGER_S, so one
transaction carries many records (a transaction's fixed cost, not its rows, is most of the
writer's CPU). `drained()` and stopping wake the writer at once. Every record is counted once
settled (written, rejected or lost), which wakes the `drained()` waiters. `RecordStats` holds
the counters the metrics read. The thread and its database work: record_writer.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from dataclasses import dataclass

from voiceagent.logging import clip, get_logger
from voiceagent.store.records.rows import Record

log = get_logger("voiceagent.store")

LINGER_S = 1.0
"""How often the writer looks for records: a record is at most this late, and a crash
(SIGKILL) loses at most this much. At 100 calls, looking every 0.25 s instead cost about 10%
more server CPU (four transactions a second instead of one; benchmarks/realtime_load.py)."""


@dataclass(slots=True)
class RecordStats:
    """Counters of the records writer (each only ever grows, except `database_up`)."""

    written: int = 0
    dropped: int = 0
    """Refused because the buffer was full."""
    rejected: int = 0
    """Rows the database refused even after fitting (skipped; other rows kept)."""
    lost: int = 0
    """Still buffered when the writer had to stop (database down at shutdown)."""
    outages: int = 0
    database_up: bool = True


class RecordBuffer:
    """A bounded buffer of records with the counters of what became of them."""

    def __init__(
        self, *, max_buffer: int = 10_000, batch_size: int = 200,
        wake: threading.Event | None = None,
    ) -> None:  # fmt: skip
        self.stats = RecordStats()
        self._buffer: queue.Queue[Record] = queue.Queue(maxsize=max_buffer)
        self._batch_size = batch_size
        self._accepted = 0
        self._settled = 0
        self._overflowing = False
        self._lock = threading.Lock()
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._stop = threading.Event()
        self._wake = wake or threading.Event()  # set by `drained()` and stopping: look now
        self._deadline = float("inf")

    @property
    def pending(self) -> int:
        return self._accepted - self._settled

    # The serving loop's side.
    def put(self, record: Record) -> None:
        """Buffer a record for the writer; never blocks (a full buffer drops and counts it)."""
        self._accepted += 1  # before the writer can settle it
        try:
            self._buffer.put_nowait(record)
        except queue.Full:
            self._accepted -= 1
            self.stats.dropped += 1
            if not self._overflowing:
                self._overflowing = True
                log.error(
                    "records_buffer_full", op=record.op, call_sid=clip(record.call_sid),
                    dropped=self.stats.dropped, buffered=self._buffer.qsize(),
                )  # fmt: skip

    async def drained(self) -> None:
        """Wait until everything buffered so far is written, rejected or lost."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._settled >= self._accepted:
                return
            self._waiters.append((self._accepted, loop, done))
        self._wake.set()
        await done

    def finish(self) -> None:
        """Take no more waits: the writer drains what is left at once, then `next_batch`
        returns None."""
        self._stop.set()
        self._wake.set()

    # The writer thread's side.
    def next_batch(self) -> list[Record] | None:
        """The next batch; None once stopping with nothing left.

        The writer looks every LINGER_S instead of being woken by each record: a record waits
        at most that long, one transaction carries everything that came meanwhile, and the
        serving loop's `put` never wakes another thread. A full batch waiting is taken at once,
        and so is everything when `drained()` or `stop()` wakes the writer."""
        while True:
            if self._buffer.qsize() < self._batch_size and not self._stop.is_set():
                self._wake.wait(LINGER_S)
                self._wake.clear()
            batch = self._drain_buffer(self._batch_size)
            if batch:
                return batch
            if self._stop.is_set():
                return None

    def _gave_up(self) -> bool:
        return self._stop.is_set() and time.monotonic() >= self._deadline

    def _drain_buffer(self, limit: int | None = None) -> list[Record]:
        """Up to `limit` buffered records (all if None), without waiting."""
        taken: list[Record] = []
        while limit is None or len(taken) < limit:
            try:
                taken.append(self._buffer.get_nowait())
            except queue.Empty:
                break
        return taken

    def settle(self, count: int, *, written: int = 0) -> None:
        """Count records as done (written, rejected or lost) and wake `drained()` waiters."""
        self.stats.written += written
        with self._lock:
            self._settled += count
            ready = [w for w in self._waiters if w[0] <= self._settled]
            self._waiters = [w for w in self._waiters if w[0] > self._settled]
        for _, loop, done in ready:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(_resolve, done)

    def _lose(self, records: list[Record]) -> None:
        if records:
            self.stats.lost += len(records)
            self.settle(len(records))
            log.error("records_lost", records=len(records), lost=self.stats.lost)

    def _report_overflow(self) -> None:
        if self._overflowing and self._buffer.qsize() < self._buffer.maxsize:
            self._overflowing = False
            log.warning("records_dropped", dropped=self.stats.dropped)


def _resolve(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)
