"""Frames taken as they arrive (`Channel.intercept`) over in-memory channels: a hook sees a
frame only while `receive` waits with nothing queued, what it declines comes to `receive`, and
the order of what is left is kept. Over a real socket: tests/e2e/test_frame_intercept.py."""

from __future__ import annotations

import asyncio

import pytest

from voiceagent.transport.channel import ChannelClosed, memory_pair


async def test_memory_channel_hook_like_a_socket() -> None:
    ours, peer = memory_pair()
    taken: list[str] = []
    assert ours.intercept(lambda text: text.startswith("take") and not taken.append(text))
    await peer.send("take 0")  # nobody receives yet: queued, not offered
    receiving = asyncio.create_task(ours.receive())
    assert await asyncio.wait_for(receiving, 5) == "take 0"
    receiving = asyncio.create_task(ours.receive())
    await asyncio.sleep(0)
    await peer.send("take 1")
    peer.send_nowait("take 2")
    await peer.send("keep 3")
    await peer.send("take 4")
    assert await asyncio.wait_for(receiving, 5) == "keep 3"
    assert await ours.receive() == "take 4"
    assert taken == ["take 1", "take 2"]


async def test_memory_channel_is_not_writable_when_its_peer_is_full() -> None:
    ours, peer = memory_pair(maxsize=1)
    assert peer.writable
    peer.send_nowait("one")
    assert not peer.writable
    assert await ours.receive() == "one"
    await ours.close()
    assert not peer.writable
    with pytest.raises(ChannelClosed):
        peer.send_nowait("two")
