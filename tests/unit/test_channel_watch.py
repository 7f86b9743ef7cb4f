"""The channel watch: a silent peer and a peer that stops reading are ended (no sockets)."""

from __future__ import annotations

import asyncio
import time

from voiceagent.transport.channel import memory_pair
from voiceagent.transport.watch import watch


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


async def test_one_ticker_watches_every_channel_and_a_failure_stays_with_its_call() -> None:
    """Every watched channel of the loop shares one timer (not one per call); a call whose
    expiry callback fails gets the error in its own watch, the others are still ended."""
    quiet = [memory_pair()[0] for _ in range(3)]

    def failing(reason: str) -> None:
        raise RuntimeError("could not record why")

    watchers = [
        asyncio.create_task(watch(c, 0.2, 5.0, "upstream", failing if i == 0 else None))
        for i, c in enumerate(quiet)
    ]
    await asyncio.sleep(0)
    tickers = [t for t in asyncio.all_tasks() if "_Ticker._run" in t.get_coro().__qualname__]
    assert len(tickers) == 1
    results = await asyncio.wait_for(asyncio.gather(*watchers, return_exceptions=True), 5)
    assert isinstance(results[0], RuntimeError) and results[1:] == [None, None]
    assert all(c.closed for c in quiet[1:])
