"""Unit tests of the shared playback / barge-in state machine (no sockets, no loop)."""

from __future__ import annotations

from voiceagent.session.commands import (
    AbortStream,
    CancelResponse,
    ClearPlayback,
    TruncateItem,
)
from voiceagent.session.history import History
from voiceagent.session.playback import PlaybackTracker


def _tracker() -> tuple[PlaybackTracker, History]:
    history = History()
    return PlaybackTracker(history), history


def test_mark_echo_confirms_playback_and_history_text() -> None:
    """An echoed mark makes the audio before it, and its text, count as heard."""
    tracker, history = _tracker()
    tracker.begin_response("r1", "item1")
    m1 = tracker.audio_sent("r1", 100, "Hello ")
    tracker.audio_sent("r1", 100, "there.")
    echo = tracker.mark_echoed(m1)
    assert echo is not None and echo.first and echo.heard_ms == 100
    assert history.turns[-1].text == "Hello "
    assert tracker.playing


def test_barge_in_while_playing_clears_cancels_and_truncates_at_heard_ms() -> None:
    """Speech during playback: clear, cancel the active response, truncate at heard ms."""
    tracker, history = _tracker()
    tracker.begin_response("r1", "item1")
    m1 = tracker.audio_sent("r1", 40, "One ")
    tracker.audio_sent("r1", 40, "two ")
    tracker.audio_sent("r1", 40, "three.")
    tracker.mark_echoed(m1)
    commands = tracker.speech_started()
    assert commands == [ClearPlayback(), CancelResponse("r1"), TruncateItem("item1", 40)]
    assert history.turns[-1].text == "One " and history.turns[-1].interrupted
    assert not tracker.accepts_audio("r1")
    assert tracker.barge_ins == 1


def test_flush_echoes_after_clear_are_not_proof_of_playback() -> None:
    """Marks Twilio echoes because of `clear` do not extend what the caller heard."""
    tracker, history = _tracker()
    tracker.begin_response("r1", "item1")
    m1 = tracker.audio_sent("r1", 40, "a ")
    m2 = tracker.audio_sent("r1", 40, "b ")
    tracker.speech_started()
    assert tracker.mark_echoed(m1) is None
    assert tracker.mark_echoed(m2) is None
    assert history.turns[-1].text == ""


def test_no_cancel_when_response_already_done() -> None:
    """After response.done only the buffered audio is cleared; no cancel is sent."""
    tracker, _ = _tracker()
    tracker.begin_response("r1", "item1")
    tracker.audio_sent("r1", 40, "x")
    tracker.response_finished("r1")
    commands = tracker.speech_started()
    assert CancelResponse("r1") not in commands
    assert commands[0] == ClearPlayback()
    assert TruncateItem("item1", 0) in commands


def test_speech_when_idle_does_nothing() -> None:
    """Caller speech with no agent audio playing or generating is not a barge-in."""
    tracker, _ = _tracker()
    assert tracker.speech_started() == []
    tracker.begin_response("r1")
    m = tracker.audio_sent("r1", 40, "x")
    tracker.response_finished("r1")
    tracker.mark_echoed(m)
    assert tracker.speech_started() == []
    assert tracker.barge_ins == 0


def test_relay_interrupt_keeps_sentences_covered_by_heard_ms() -> None:
    """ConversationRelay: clips count as heard until `interrupt` says how much was played."""
    history = History()
    tracker = PlaybackTracker(history, confirm_by_marks=False)
    tracker.begin_response("t1")
    tracker.audio_sent("t1", 1200, "First sentence. ")
    tracker.audio_sent("t1", 1500, "Second sentence. ")
    assert history.turns[-1].text == "First sentence. Second sentence. "
    commands = tracker.interrupted(1800)
    assert commands == [AbortStream("t1")]
    assert history.turns[-1].text == "First sentence. "


def test_relay_interrupt_prefers_twilio_utterance() -> None:
    """When Twilio reports the words played, they become the assistant turn."""
    history = History()
    tracker = PlaybackTracker(history, confirm_by_marks=False)
    tracker.begin_response("t1")
    tracker.audio_sent("t1", 1000, "Life is a complex set of things.")
    tracker.response_finished("t1")
    assert tracker.interrupted(460, "Life is a complex set of") == []
    assert history.turns[-1].text == "Life is a complex set of"
