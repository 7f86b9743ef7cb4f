"""Run by test_killed_process_keeps_every_finished_turn: a call that is killed mid-way.

Records a call start and two finished turns through a RecordingSink, waits until the writer has
committed them (as it does within milliseconds in a live call), starts a third turn, prints
`mid_call` and waits to be SIGKILLed. Nothing runs at exit: no flush, no stop().
"""

from __future__ import annotations

import asyncio
import sys

from voiceagent.logging import configure_logging
from voiceagent.session.call import CallSession
from voiceagent.store.records.schema import make_engine
from voiceagent.store.records.sink import RecordingSink


async def main(url: str, schema: str | None) -> None:
    configure_logging("warning")
    sink = RecordingSink(make_engine(url, schema=schema))
    await sink.start()
    call = CallSession("CAcrash", "+18005550103", "realtime-passthrough", started=100.0)
    sink.call_started(call)
    for start in (100.0, 105.0):
        turn = call.latency.start_turn(start)
        call.latency.audio_out(start + 0.35)
        sink.turn_finished(call, turn)
    await sink.drained()
    call.latency.start_turn(110.0)  # the turn in progress when the process dies
    print("mid_call", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] or None))
