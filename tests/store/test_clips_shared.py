"""Clips from any instance: a fetch of a clip still being made on another instance waits for
it, and only unknown or expired clips are not found."""

from __future__ import annotations

import asyncio

import pytest

from voiceagent.errors import ClipNotFound
from voiceagent.store.live.clips import RedisClipStore
from voiceagent.store.live.redis_backend import RedisBackend

CLOSED_PORT_URL = "redis://127.0.0.1:1/0"


def _store(url: str, ttl_s: float = 30.0) -> RedisClipStore:
    return RedisClipStore(RedisBackend.from_url(url).redis, ttl_s)


async def test_clip_being_made_on_a_is_served_whole_by_b(redis_url: str) -> None:
    """A fetch on B of a clip opened on A waits while A streams it, then gets the full body."""
    a, b = _store(redis_url), _store(redis_url)
    try:
        clip_id = await a.open("audio/wav")
        fetches = [asyncio.create_task(b.get(clip_id, wait=10)) for _ in range(2)]
        await asyncio.sleep(0.2)
        assert not any(f.done() for f in fetches)
        a.append(clip_id, b"RIFF")
        await a.finish(clip_id, b"RIFF....WAVEdata")
        bodies = await asyncio.gather(*fetches)
        assert {(x.content_type, x.data) for x in bodies} == {("audio/wav", b"RIFF....WAVEdata")}
        assert (await b.get(clip_id)).data == b"RIFF....WAVEdata"  # finished: served at once
    finally:
        await a.close()
        await b.close()


async def test_fetch_completed_on_b_is_reported_to_the_maker(redis_url: str) -> None:
    """The clip's `on_fetched` on A runs when B completes a fetch of it."""
    a, b = _store(redis_url), _store(redis_url)
    reported = asyncio.Event()
    try:
        clip_id = await a.open("audio/wav", on_fetched=reported.set)
        await a.finish(clip_id, b"RIFF")
        await b.get(clip_id)
        b.fetched(clip_id)
        await asyncio.wait_for(reported.wait(), 10)
    finally:
        await a.close()
        await b.close()


async def test_unknown_and_expired_clips_are_not_found(redis_url: str) -> None:
    """An id nobody opened, and a clip past its TTL, are not found without waiting."""
    a, b = _store(redis_url, ttl_s=0.3), _store(redis_url, ttl_s=0.3)
    try:
        with pytest.raises(ClipNotFound):
            await asyncio.wait_for(b.get("never-opened-clip-id-xyz", wait=30), 5)
        clip_id = await a.open("audio/wav")
        await a.finish(clip_id, b"RIFF")
        await asyncio.sleep(0.5)
        with pytest.raises(ClipNotFound):
            await asyncio.wait_for(b.get(clip_id, wait=30), 5)
    finally:
        await a.close()
        await b.close()


async def test_open_clip_never_finished_ends_in_not_found_after_the_wait(redis_url: str) -> None:
    """A clip that stays open longer than the bounded wait is reported as not found."""
    a, b = _store(redis_url), _store(redis_url)
    try:
        clip_id = await a.open("audio/wav")
        with pytest.raises(ClipNotFound, match="still open"):
            await b.get(clip_id, wait=0.3)
    finally:
        await a.close()
        await b.close()


async def test_clips_are_served_locally_while_redis_is_unreachable() -> None:
    """With Redis down, the instance that made a clip still serves it, and nothing raises."""
    store = _store(CLOSED_PORT_URL)
    try:
        clip_id = await store.open("audio/wav")
        waiter = asyncio.create_task(store.get(clip_id, wait=10))
        await store.finish(clip_id, b"RIFF-local")
        assert (await waiter).data == b"RIFF-local"
        with pytest.raises(ClipNotFound):
            await store.get("elsewhere-clip-id-abcdef", wait=1)
        store.fetched("elsewhere-clip-id-abcdef")
    finally:
        await store.close()
