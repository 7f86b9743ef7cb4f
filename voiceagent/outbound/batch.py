"""`voiceagent call --csv`: one call per row, paced, bounded, resumable, stoppable.

Each row's ``to`` column is the number; every other column is a variable. Calls are placed at
``rate`` per second, at most ``max_concurrent`` in progress; each row's result is appended to
the results file as soon as it is known (a refusal at once, a call when it ends), so a rerun
with the same results file skips the rows already there. ``stop()`` (the first Ctrl-C) stops
dialling and lets the calls in progress finish.
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from voiceagent.outbound.client import CallsClient, outcome_of

RESULT_FIELDS = ("row", "to", "call_sid", "status", "answered_by", "duration_s", "error")
RETRYABLE = frozenset({"busy_capacity", "twilio", "unreachable"})  # not "done": tried again


@dataclass(frozen=True, slots=True)
class Row:
    index: int  # 1-based, as in the file after its header
    to: str
    variables: dict[str, str]


def read_rows(path: Path) -> list[Row]:
    """The CSV's rows; ValueError when it has no ``to`` column."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "to" not in reader.fieldnames:
            raise ValueError(f"{path}: needs a header with a 'to' column")
        return [
            Row(i, (raw.get("to") or "").strip(),
                {k: (v or "") for k, v in raw.items() if k and k != "to"})
            for i, raw in enumerate(reader, 1)
        ]  # fmt: skip


def done_rows(path: Path) -> set[tuple[int, str]]:
    """(row, to) of the results already written, except refusals worth another try."""
    if not path.exists():
        return set()
    with path.open(newline="", encoding="utf-8") as handle:
        return {
            (int(r["row"]), r["to"]) for r in csv.DictReader(handle)
            if r.get("row", "").isdigit() and r.get("error") not in RETRYABLE
        }  # fmt: skip


def parse_rate(text: str) -> float:
    """``2``, ``2/s``, ``30/m`` or ``600/h`` → calls per second (ValueError otherwise)."""
    number, _, unit = text.partition("/")
    per = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}.get(unit.strip())
    value = float(number)
    if per is None or value <= 0:
        raise ValueError(f"bad rate {text!r}: use e.g. 1/s, 30/m")
    return value / per


@dataclass
class BatchRun:
    """One batch: rows in, results file out (see the module docstring)."""

    client: CallsClient
    from_: str
    results: Path
    rate: float = 1.0
    max_concurrent: int = 5
    poll_s: float = 1.0
    on_progress: Callable[[BatchRun], None] | None = None
    counts: Counter[str] = field(default_factory=Counter)
    dialled: int = 0
    skipped: int = 0
    total: int = 0
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self) -> None:
        """Dial no more rows; calls in progress finish and are written."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self, rows: Iterable[Row]) -> Counter[str]:
        done = done_rows(self.results)
        todo = [row for row in rows if (row.index, row.to) not in done]
        self.total, self.skipped = len(todo), len(done)
        slots = asyncio.Semaphore(self.max_concurrent)
        interval, next_at = 1.0 / self.rate, time.monotonic()
        async with asyncio.TaskGroup() as group:
            for row in todo:
                await self._wait_for(slots.acquire())
                if self.stopping:
                    break
                delay = next_at - time.monotonic()
                if delay > 0:
                    await self._wait_for(asyncio.sleep(delay))
                    if self.stopping:
                        slots.release()
                        break
                next_at = max(next_at + interval, time.monotonic())
                group.create_task(self._one(row, slots))
        return self.counts

    async def _wait_for(self, work: Any) -> None:
        """Await ``work`` unless ``stop()`` comes first."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not task.done():
            task.cancel()

    async def _one(self, row: Row, slots: asyncio.Semaphore) -> None:
        try:
            placed = await self.client.place(self.from_, row.to, row.variables)
            if not placed.call_sid:
                error = "busy_capacity" if placed.error == "busy" else placed.error
                self._write(row, {"status": "refused", "error": error})
                self.counts["refused"] += 1
                return
            self.dialled += 1
            self._progress()
            call = await self.client.follow(placed.call_sid, self.poll_s)
            self._write(row, {"call_sid": placed.call_sid, "status": call.get("status", ""),
                              "answered_by": call.get("answered_by") or "",
                              "duration_s": call.get("duration_s") or ""})  # fmt: skip
            self.counts[outcome_of(call)] += 1
        except (aiohttp.ClientError, OSError):
            self._write(row, {"status": "refused", "error": "unreachable"})
            self.counts["refused"] += 1
        finally:
            slots.release()
            self._progress()

    def _write(self, row: Row, values: dict[str, object]) -> None:
        new = not self.results.exists() or self.results.stat().st_size == 0
        with self.results.open("a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, RESULT_FIELDS)
            if new:
                writer.writeheader()
            writer.writerow({"row": row.index, "to": row.to, **values})

    def _progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self)


def progress_line(run: BatchRun, width: int = 24) -> str:
    """``[#####.......] 12/40 | completed 5 voicemail 2 no-answer 1 | in progress 3``."""
    finished = sum(run.counts.values())
    share = finished / run.total if run.total else 1.0
    bar = "#" * round(share * width)
    counts = " ".join(f"{k} {v}" for k, v in sorted(run.counts.items())) or "-"
    in_progress = run.dialled - (finished - run.counts.get("refused", 0))
    tail = " | stopping: letting calls finish" if run.stopping else ""
    return (f"[{bar.ljust(width, '.')}] {finished}/{run.total} | {counts} | "
            f"in progress {max(0, in_progress)}{tail}")  # fmt: skip
