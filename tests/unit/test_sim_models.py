"""The simulators' pure parts: the fake's energy VAD and Twilio's playback buffer model."""

from __future__ import annotations

from voiceagent.audio import silence_ulaw, speech_like_ulaw
from voiceagent.sim.energy_vad import EnergyVad
from voiceagent.sim.media_playback import MediaCallRecord, TwilioPlayback


def test_vad_reports_speech_boundaries_in_audio_ms() -> None:
    """Speech after silence starts at its first voiced frame; the hangover ends it."""
    vad = EnergyVad(threshold_dbfs=-40, start_ms=60, hangover_ms=300)
    events = vad.feed(silence_ulaw(500) + speech_like_ulaw(800) + silence_ulaw(500))
    assert [(e.kind, e.ms) for e in events] == [("started", 500), ("stopped", 1300)]


def test_vad_ignores_blips_shorter_than_the_start_time() -> None:
    """A 40 ms noise burst is not speech when 60 ms are needed."""
    vad = EnergyVad(start_ms=60)
    assert vad.feed(silence_ulaw(200) + speech_like_ulaw(40) + silence_ulaw(400)) == []


def test_mark_echoes_when_its_audio_has_played() -> None:
    """A mark is echoed once the audio queued before it has played, not before."""
    playback, record = TwilioPlayback(), MediaCallRecord("CA1", "+1")
    playback.add_audio(b"\x00" * 320)
    assert playback.add_mark("r1:1") == []
    assert playback.tick(record, 1.0) == []
    assert playback.tick(record, 1.02) == ["r1:1"]
    assert record.heard_ms_by_response == {"r1": 40.0} and record.first_heard_at == 1.0


def test_mark_with_nothing_buffered_echoes_at_once() -> None:
    """With no audio buffered, a mark comes straight back."""
    assert TwilioPlayback().add_mark("r1:1") == ["r1:1"]


def test_clear_drops_audio_and_echoes_every_pending_mark() -> None:
    """`clear` empties the buffer and returns all pending marks in order."""
    playback, record = TwilioPlayback(), MediaCallRecord("CA1", "+1")
    for n in (1, 2):
        playback.add_audio(b"\x00" * 320)
        playback.add_mark(f"r1:{n}")
    playback.tick(record, 0.0)
    assert playback.clear(record) == ["r1:1", "r1:2"]
    assert playback.buffered == 0 and playback.tick(record, 0.02) == []
    assert record.heard_ms == 20.0


def test_record_summary_reports_what_was_heard() -> None:
    """The printable summary names each response heard with its milliseconds."""
    playback, record = TwilioPlayback(), MediaCallRecord("CA1", "+1")
    record.started_at = 0.9
    playback.add_audio(b"\x00" * 160)
    playback.add_mark("resp_1:1")
    playback.tick(record, 1.0)
    playback.tick(record, 1.02)
    summary = record.summary()
    assert summary["heard_ms_by_response"] == {"resp_1": 20}
    assert summary["greeting_latency_ms"] == 100.0
