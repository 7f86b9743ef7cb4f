"""Unit tests of the in-memory clip store: ids, open clips, expiry, memory bound."""

from __future__ import annotations

import asyncio

import pytest

from voiceagent.errors import ClipNotFound
from voiceagent.store.live.clips import MemoryClipStore
from voiceagent.web.clips import CLIP_ID


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_ids_are_unguessable_and_unique() -> None:
    """Clip ids are long random URL-safe tokens, never repeated."""
    store = MemoryClipStore()
    ids = {await store.open("audio/wav") for _ in range(200)}
    assert len(ids) == 200 and all(len(i) >= 24 for i in ids)


async def test_get_of_open_clip_waits_until_finished() -> None:
    """A fetch of an open clip is held until the clip is finished, then gets the whole body."""
    store = MemoryClipStore()
    clip_id = await store.open("audio/wav")
    waiter = asyncio.create_task(store.get(clip_id, wait=5))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await store.finish(clip_id, b"RIFF-body")
    body = await waiter
    assert body.data == b"RIFF-body" and body.content_type == "audio/wav"


async def test_open_clip_not_finished_in_time_is_not_found() -> None:
    """A bounded wait on a clip that never completes ends in ClipNotFound."""
    store = MemoryClipStore()
    clip_id = await store.open("audio/wav")
    with pytest.raises(ClipNotFound):
        await store.get(clip_id, wait=0.01)


async def test_clips_expire_after_ttl() -> None:
    """A clip is served until its TTL passes, then it is unknown and its memory freed."""
    clock = Clock()
    store = MemoryClipStore(ttl_s=60, clock=clock)
    clip_id = await store.open("audio/wav")
    await store.finish(clip_id, b"x" * 100)
    clock.now += 59
    assert (await store.get(clip_id)).data == b"x" * 100
    clock.now += 2
    with pytest.raises(ClipNotFound):
        await store.get(clip_id)
    assert len(store) == 0 and store.bytes_held == 0


async def test_memory_is_bounded_by_evicting_oldest() -> None:
    """Past the byte bound the oldest clips are evicted, the newest kept."""
    store = MemoryClipStore(max_bytes=1000)
    ids = []
    for _ in range(5):
        clip_id = await store.open("audio/wav")
        await store.finish(clip_id, b"y" * 300)
        ids.append(clip_id)
    assert store.bytes_held <= 1000
    with pytest.raises(ClipNotFound):
        await store.get(ids[0])
    assert (await store.get(ids[-1])).data == b"y" * 300


async def test_unknown_clip_is_not_found_and_fetch_reported_once() -> None:
    """An unknown id raises ClipNotFound; `fetched` calls the clip's callback only once."""
    store = MemoryClipStore()
    with pytest.raises(ClipNotFound):
        await store.get("nope")
    seen: list[int] = []
    clip_id = await store.open("audio/wav", on_fetched=lambda: seen.append(1))
    store.fetched(clip_id)
    store.fetched(clip_id)
    assert seen == [1]


async def test_stream_yields_parts_until_finished() -> None:
    """Streaming an open clip yields each appended part as it comes, ending at finish."""
    store = MemoryClipStore()
    clip_id = await store.open("audio/wav")
    store.append(clip_id, b"head")
    parts = store.stream(clip_id)
    assert parts is not None
    got: list[bytes] = []

    async def read() -> None:
        async for part in parts:
            got.append(part)

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.01)
    store.append(clip_id, b"data")
    await store.finish(clip_id, b"headdata")
    await asyncio.wait_for(reader, 2)
    assert got == [b"head", b"data"]


async def test_ids_handed_out_are_what_the_clip_route_accepts() -> None:
    """Every id `open` hands out passes the route's id check, which refuses anything else."""
    store = MemoryClipStore()
    ids = [await store.open("audio/wav") for _ in range(50)]
    assert all(CLIP_ID.fullmatch(i) for i in ids)
    assert not any(CLIP_ID.fullmatch(bad) for bad in ("nope", "../etc/passwd", "x" * 65, ""))
