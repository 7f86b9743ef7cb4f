"""The records buffer's batching, without a database: the writer looks every LINGER_S (the
serving loop's `put` never wakes it), takes everything that came meanwhile in one batch,
takes a full batch at once, and is woken at once by `drained()` and by stopping."""

from __future__ import annotations

import asyncio
import threading

from voiceagent.store.records.buffer import LINGER_S, RecordBuffer
from voiceagent.store.records.rows import Record


class _CountingWake(threading.Event):
    """The buffer's wake event, counting the writer's waits instead of sleeping through them."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return self.is_set()


def _buffer(batch_size: int = 200) -> tuple[RecordBuffer, _CountingWake]:
    wake = _CountingWake()
    return RecordBuffer(max_buffer=100, batch_size=batch_size, wake=wake), wake


def _record(n: int) -> Record:
    return Record("turn", {"call_sid": f"CA{n}"})


def test_records_that_trickle_in_go_out_in_one_batch_after_one_wait() -> None:
    buffer, wake = _buffer()
    for n in range(3):
        buffer.put(_record(n))
    batch = buffer.next_batch()
    assert batch is not None and [r.call_sid for r in batch] == ["CA0", "CA1", "CA2"]
    assert wake.waits == [LINGER_S]  # one look, no wakeup per record


def test_a_full_batch_is_taken_at_once_and_the_rest_after_the_next_look() -> None:
    buffer, wake = _buffer(batch_size=2)
    for n in range(5):
        buffer.put(_record(n))
    sizes = []
    for _ in range(3):
        batch = buffer.next_batch()
        assert batch is not None
        sizes.append(len(batch))
    assert sizes == [2, 2, 1]
    assert wake.waits == [LINGER_S]  # after a full batch the writer does not wait


def test_stopping_drains_what_is_left_without_waiting_then_ends() -> None:
    buffer, wake = _buffer()
    buffer.put(_record(1))
    buffer.finish()
    wake.clear()
    batch = buffer.next_batch()
    assert batch is not None and len(batch) == 1
    assert buffer.next_batch() is None
    assert wake.waits == []


async def test_drained_wakes_the_writer_and_returns_once_its_records_are_written() -> None:
    buffer, wake = _buffer()
    buffer.put(_record(1))
    waiting = asyncio.create_task(buffer.drained())
    await asyncio.sleep(0)
    assert wake.is_set() and not waiting.done()  # the writer need not wait out LINGER_S
    batch = buffer.next_batch()
    assert batch is not None and len(batch) == 1
    assert not wake.is_set()  # taken: the next look waits again
    buffer.settle(len(batch), written=len(batch))
    await asyncio.wait_for(waiting, 1)
    assert buffer.stats.written == 1
