"""The configured reconnect filler over the real wire: the fake Inworld drops a session
mid-reply, the simulated Twilio caller records what reaches it."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

from tests.rig import StartRig, realtime_options, rig_config, until
from voiceagent.audio import speech_like_ulaw, wrap_wav
from voiceagent.session.gap_filler import FILLER_MARK, GapFiller
from voiceagent.session.realtime_call import RealtimeCall
from voiceagent.sim.media_playback import MediaCallRecord, Outbound
from voiceagent.sim.script import HangUp, Listen, Pause, Say

FILLER = "+18005550107"
SCRIPT = [Listen(), Say(ms=600), Listen(), Say(ms=600, seed=2), Listen(), HangUp()]
FILLER_MS = 2000


def _filler_config(tmp_path: Path, after_ms: int, **number: Any) -> Any:
    clip = tmp_path / "one-moment.wav"
    clip.write_bytes(wrap_wav(speech_like_ulaw(FILLER_MS, seed=5), 8000))
    knobs = {"filler": str(clip), "filler_after_ms": after_ms, **number.pop("knobs", {})}
    entry = {"mode": "realtime-passthrough", "record_transcripts": True,
             "agent": {"greeting": "Hello from F."},
             "realtime": {"upstream_reconnect": knobs}, **number}  # fmt: skip
    return rig_config(**{FILLER: entry})


def _filler_span(record: MediaCallRecord) -> tuple[int, int] | None:
    """Indexes in `record.outbound` of the filler's first media frame and of its mark."""
    out = record.outbound
    mark = next((i for i, o in enumerate(out) if o.detail == FILLER_MARK), None)
    if mark is None:
        return None
    first = mark
    while first > 0 and out[first - 1].event == "media":
        first -= 1
    return first, mark


async def test_slow_reconnect_plays_the_filler_then_clears_it_for_the_reply(
    start_rig: StartRig, tmp_path: Path
) -> None:
    """The new session is slow to open: after filler_after_ms the caller receives the filler
    (all of it, then its mark), then a clear, then the new answer; the conversation goes on,
    the filler is in no history, replay or turn, and it is counted."""
    options = realtime_options(drop_mid_reply=2, drop_sessions=1, connect_delay_s=0.8)
    rig = await start_rig(realtime=options, config=_filler_config(tmp_path, 200), records=True)
    record = await rig.place_call(FILLER, SCRIPT)
    span = _filler_span(record)
    assert span is not None, "the caller received the filler"
    first, mark = span
    out: list[Outbound] = record.outbound
    assert sum(o.detail for o in out[first:mark] if isinstance(o.detail, int)) == FILLER_MS * 8
    cut = max(i for i, o in enumerate(out[:first]) if o.event == "clear")  # the cut reply
    assert out[first].at - out[cut].at >= 0.19  # filler_after_ms (200) after the drop
    after = out[mark + 1 :]
    assert after[0].event == "clear", "the filler stops before the new answer"
    assert after[1].event == "media" and isinstance(after[2].detail, str)
    assert after[2].detail.split(":")[0] != "reconnect-filler"  # the new reply's own marks
    assert 0 < record.heard_ms_by_response["reconnect-filler"] < FILLER_MS
    _, second = rig.realtime.sessions
    assert len(second.responses) >= 2 and all(r.status == "completed" for r in second.responses)
    call = await rig.ended(record.call_sid)
    assert call.counters.upstream_fillers == 1 and call.counters.upstream_reconnects == 1
    assert call.counters.turns == 2 and call.upstream_failure is None
    assert record.closed_by == "caller"
    spoken = {"Hello from F.", *options.answers}
    said = [m["content"] for m in call.history.messages() if m["role"] == "assistant"]
    assert said and all(text in spoken for text in said if text)  # the agent's words only
    replayed = [e["item"]["role"] for e in second.of_type("conversation.item.create")]
    assert replayed[0] == "assistant" and replayed[-1] == "user"  # greeting ... cut turn
    await rig.stop()  # the writer flushes: the call's record counts the filler
    row = await rig.call_row(record.call_sid)
    assert (row["upstream_fillers"], row["upstream_reconnects"]) == (1, 1)


async def test_fast_reconnect_stays_silent(start_rig: StartRig, tmp_path: Path) -> None:
    """The new session answers well before filler_after_ms: no filler frame reaches the
    caller, the call goes on as without one."""
    options = realtime_options(drop_mid_reply=2, drop_sessions=1)
    rig = await start_rig(realtime=options, config=_filler_config(tmp_path, 1500))
    record = await rig.place_call(FILLER, SCRIPT)
    assert _filler_span(record) is None and "reconnect-filler" not in record.heard_ms_by_response
    call = await rig.ended(record.call_sid)
    assert call.counters.upstream_reconnects == 1 and call.counters.upstream_fillers == 0
    assert record.closed_by == "caller" and len(record.responses_heard()) >= 3


async def test_failed_reconnect_clears_the_filler_before_the_failover(
    start_rig: StartRig, tmp_path: Path
) -> None:
    """Every new session refused while the filler plays: it is cleared before the stream
    ends, and the call fails over to relay as before."""
    options = realtime_options(drop_mid_reply=2, refuse_after_sessions=1)
    config = _filler_config(tmp_path, 100, fallback_mode="relay-router",
                            knobs={"backoff_ms": 300})  # fmt: skip
    rig = await start_rig(realtime=options, config=config)
    record = await rig.place_call(FILLER, SCRIPT)
    span = _filler_span(record)
    assert span is not None
    assert [o.event for o in record.outbound[span[1] + 1 :]] == ["clear"]
    assert record.action_twiml is not None and "<ConversationRelay" in record.action_twiml
    call = await rig.ended(record.call_sid)
    assert call.upstream_failure == "dropped" and call.counters.upstream_fillers == 1


async def test_a_hang_up_mid_gap_leaves_no_filler_behind(
    start_rig: StartRig, tmp_path: Path
) -> None:
    """The caller hangs up while the new session is still opening and the filler not yet due:
    nothing is played, and the call's machine and filler are gone with the call (the timer
    does not outlive it)."""
    options = realtime_options(drop_mid_reply=2, drop_sessions=1, connect_delay_s=1.5)
    rig = await start_rig(realtime=options, config=_filler_config(tmp_path, 8000))
    record = await rig.place_call(FILLER, [Listen(), Say(ms=600), Pause(ms=900), HangUp()])
    call = await rig.ended(record.call_sid)
    assert call.counters.upstream_fillers == 0 and _filler_span(record) is None
    assert rig.realtime.sessions[0].responses[1].status == "dropped"
    assert call.counters.upstream_reconnects == 0  # hung up before the new session opened

    def timers() -> list[asyncio.Task[Any]]:
        return [t for t in asyncio.all_tasks() if "FillerPlayer" in repr(t.get_coro())]

    def leftovers() -> list[object]:
        gc.collect()
        return [o for o in gc.get_objects() if isinstance(o, RealtimeCall | GapFiller)]

    await until(lambda: timers() == [], within_s=2)  # not the 8 s it was set to wait
    await until(lambda: leftovers() == [], within_s=5)
