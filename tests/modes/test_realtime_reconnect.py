"""`ReconnectingUpstream` without sockets: in-memory channels stand in for Inworld sessions
and a connector that fails on demand; the clock's sleeps are recorded, not waited."""

from __future__ import annotations

from voiceagent.config_knobs import UpstreamReconnect
from voiceagent.errors import UpstreamError, UpstreamFailure
from voiceagent.modes.realtime_reconnect import ReconnectingUpstream
from voiceagent.session.call import CallSession, EndReason
from voiceagent.transport.channel import Channel, MemoryChannel, memory_pair


class _Sessions:
    """A connector: each `connect()` fails (while `failures` lasts) or opens a new pair."""

    def __init__(self, failures: int = 0, first_frame: str | None = None) -> None:
        self.failures = failures
        self.first_frame = first_frame  # what each new session sends first
        self.peers: list[MemoryChannel] = []  # Inworld's end of each session opened
        self.attempts = 0

    async def connect(self) -> Channel:
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            raise UpstreamError(UpstreamFailure.UNAVAILABLE, "503")
        ours, theirs = memory_pair()
        self.peers.append(theirs)
        if self.first_frame is not None:
            await theirs.send(self.first_frame)
        return ours


def _upstream(
    sessions: _Sessions, call: CallSession, knobs: UpstreamReconnect
) -> tuple[ReconnectingUpstream, MemoryChannel, list[float], list[str]]:
    ours, theirs = memory_pair()
    sleeps: list[float] = []
    drops: list[str] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def resume() -> list[str]:
        return ['{"type":"session.update"}', '{"type":"conversation.item.create"}']

    async def dropped() -> None:
        drops.append("drop")

    upstream = ReconnectingUpstream(
        ours, connect=sessions.connect, resume=resume, dropped=dropped, knobs=knobs,
        call=call, sleep=sleep,
    )  # fmt: skip
    return upstream, theirs, sleeps, drops


def _call() -> CallSession:
    return CallSession(call_sid="CA" + "0" * 32, number="+18005550101", mode="realtime")


async def test_a_drop_is_replaced_after_failed_attempts_with_backoff() -> None:
    """Two refused attempts then a new session: the first attempt does not wait, the next
    waits double, the new session gets its first frames in order, frames flow again, and one
    reconnect is counted."""
    call, sessions = _call(), _Sessions(failures=2, first_frame="after")
    upstream, first, sleeps, drops = _upstream(sessions, call, UpstreamReconnect(backoff_ms=100))
    await first.send("before")
    assert await upstream.receive() == "before"
    await first.close()
    assert await upstream.receive() == "after"
    assert sessions.attempts == 3 and sleeps == [0.1, 0.2] and drops == ["drop"]
    new = sessions.peers[0]
    assert [await new.receive(), await new.receive()] == [
        '{"type":"session.update"}', '{"type":"conversation.item.create"}'
    ]  # fmt: skip
    await upstream.send("appended")
    assert await new.receive() == "appended"
    assert call.counters.upstream_reconnects == 1


async def test_every_attempt_failing_ends_the_upstream() -> None:
    """When every attempt is refused, `receive` returns None (the mode's failover applies)
    after exactly `attempts` tries; nothing is counted."""
    call, sessions = _call(), _Sessions(failures=99)
    upstream, first, sleeps, _ = _upstream(sessions, call, UpstreamReconnect(attempts=2))
    await first.close()
    assert await upstream.receive() is None
    assert sessions.attempts == 2 and sleeps == [0.1]
    assert call.counters.upstream_reconnects == 0


async def test_no_reconnect_when_we_closed_or_the_call_ended() -> None:
    """A close of ours, or a call already over, is the end: no new session is opened."""
    call, sessions = _call(), _Sessions()
    upstream, _first, _, drops = _upstream(sessions, call, UpstreamReconnect())
    await upstream.close()
    assert await upstream.receive() is None and sessions.attempts == 0 and drops == []
    ended, sessions2 = _call(), _Sessions()
    upstream2, first2, _, _ = _upstream(sessions2, ended, UpstreamReconnect())
    ended.end(EndReason.CALLER_HANGUP, "stop")
    await first2.close()
    assert await upstream2.receive() is None and sessions2.attempts == 0


async def test_frames_sent_while_reconnecting_are_dropped_not_raised() -> None:
    """Caller audio sent to a dead session (before the drop is noticed) is dropped and counted,
    not an error that would end the call."""
    call, sessions = _call(), _Sessions()
    upstream, first, _, _ = _upstream(sessions, call, UpstreamReconnect())
    await first.close()
    await upstream.send("lost audio")
    assert upstream.dropped_frames == 1
