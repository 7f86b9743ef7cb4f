"""The channel watch: a silent peer and a peer that stops reading are ended (no sockets)."""

from __future__ import annotations

import asyncio
import time

from voiceagent.transport.channel import memory_pair, watch


async def test_a_peer_that_stops_reading_is_aborted_after_the_send_timeout() -> None:
    """A send blocked longer than SEND_TIMEOUT aborts the channel, naming why."""
    ours, _theirs = memory_pair()
    ours.sending_since = time.monotonic()  # a send that never completes
    reasons: list[str] = []
    await asyncio.wait_for(watch(ours, None, 0.2, "phone", reasons.append), 5)
    assert ours.closed and reasons == ["phone not reading for 0.2s"]
    assert await ours.receive() is None


async def test_a_silent_peer_is_aborted_and_a_talking_one_is_not() -> None:
    """No frame for the idle timeout aborts; frames keep the channel open."""
    quiet, _ = memory_pair()
    await asyncio.wait_for(watch(quiet, 0.2, 5.0, "upstream"), 5)
    assert quiet.closed and "silent" in quiet.close_reason
    busy, peer = memory_pair()
    watcher = asyncio.create_task(watch(busy, 0.3, 5.0, "upstream"))
    for _ in range(8):
        await peer.send("ping")
        await busy.receive()
        await asyncio.sleep(0.1)
    assert not busy.closed and not watcher.done()
    watcher.cancel()
