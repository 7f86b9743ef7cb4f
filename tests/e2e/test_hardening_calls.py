"""Issue 25 through the real wire: values and sockets from a hostile Twilio end nothing but
their own call (simulated Twilio against the rig; JSON logs rendered as in production)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import structlog

from tests.rig import RELAY, StartRig
from voiceagent.logging import log_processors
from voiceagent.session.call import EndReason
from voiceagent.sim.script import HangUp, Pause, SendRaw


@contextmanager
def json_logs() -> Iterator[io.StringIO]:
    """Every log line rendered by the production JSON renderer into a buffer, for the block."""
    old = structlog.get_config()
    out = io.StringIO()
    structlog.configure(
        processors=log_processors("json"),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    try:
        yield out
    finally:
        structlog.configure(**old)


def _events(out: io.StringIO, event: str) -> list[dict[str, object]]:
    lines = [orjson.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


async def test_implausible_interrupt_duration_neither_crashes_nor_reaches_the_logs(
    start_rig: StartRig,
) -> None:
    """An `interrupt` whose durationUntilInterruptMs is 1e308 is a barge-in with an unknown
    duration: logged as JSON, and the call ends because the caller hung up, not as a crash."""
    rig = await start_rig()
    interrupt = '{"type": "interrupt", "utteranceUntilInterrupt": "Hel", '
    interrupt += '"durationUntilInterruptMs": 1e308}'
    with json_logs() as out:
        record = await rig.place_call(RELAY, [SendRaw(interrupt), Pause(300), HangUp()])
        call = await rig.ended(record.call_sid)
    assert call.end_reason is EndReason.CALLER_HANGUP
    assert not _events(out, "call_crashed")
    [barge_in] = _events(out, "barge_in")
    assert barge_in["heard_ms"] is None
