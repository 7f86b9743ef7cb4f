"""Where a relay reply's clips end with `first_clip_ms`: at a pause near the target, and
further only where the caller would otherwise run out of audio."""

from __future__ import annotations

from voiceagent.audio import speech_like_pcm16
from voiceagent.session.clip_split import CUT, MIN_CLIP_MS, ClipSplitter, Cut

RATE = 48_000
PER_MS = RATE // 1000 * 2


def _clips(splitter: ClipSplitter, pcm: bytes, chunk_ms: int = 100, now: float = 0.0) -> list[int]:
    """Feed `pcm` in chunks; the clips' lengths (ms), the last one still open."""
    clips, step = [0], chunk_ms * PER_MS
    for start in range(0, len(pcm), step):
        for piece in splitter.feed(pcm[start : start + step], now):
            if isinstance(piece, Cut):
                clips.append(0)
            else:
                clips[-1] += len(piece)
    clips[-1] += len(splitter.flush())
    return [n // PER_MS for n in clips]


def test_without_first_clip_ms_nothing_is_cut() -> None:
    """Off (None): every chunk goes whole to the open clip."""
    splitter = ClipSplitter(None)
    pcm = speech_like_pcm16(1500)
    assert splitter.feed(pcm, 0.0) == [pcm]
    assert _clips(ClipSplitter(None), pcm) == [1500]


def test_first_clip_ends_at_the_first_pause_after_the_target() -> None:
    """A pause 30 ms after the 300 ms target: the first clip ends in it (at its first quiet
    10 ms frame); the rest of the sentence is the next clip, nothing lost."""
    pcm = speech_like_pcm16(330, seed=1) + bytes(50 * PER_MS) + speech_like_pcm16(1000, seed=2)
    assert _clips(ClipSplitter(300), pcm) == [340, 1040]


def test_without_a_pause_the_first_clip_ends_at_the_quietest_frame_nearby() -> None:
    """Speech without silence: the cut is at the quietest frame within 120 ms of the target."""
    pcm = speech_like_pcm16(1500, seed=3)
    first, *rest = _clips(ClipSplitter(300), pcm)
    assert 300 < first <= 420 and sum(rest) == 1500 - first and len(rest) == 1


def test_a_first_sentence_shorter_than_the_target_is_one_clip() -> None:
    """A 200 ms first segment ends before 300 ms: it stays one clip."""
    splitter = ClipSplitter(300)
    assert _clips(splitter, speech_like_pcm16(200)) == [200]


def test_later_clips_are_cut_only_when_the_caller_would_run_out() -> None:
    """After a 300 ms clip closed at t=0, audio arriving while plenty is queued stays in the
    open clip; audio arriving when the queue is about to run dry closes it (at least
    MIN_CLIP_MS in it) so it can be fetched in time."""
    splitter = ClipSplitter(300)
    splitter.feed(speech_like_pcm16(400), 0.0)  # the first cut happens in here
    splitter.clip_closed(300.0, 0.0)  # heard until 0.08 + 0.3 s
    early = splitter.feed(speech_like_pcm16(MIN_CLIP_MS + 50, seed=4), 0.05)
    assert CUT not in early
    late = splitter.feed(speech_like_pcm16(100, seed=5), 0.3)
    assert CUT in late


def test_a_stream_slower_than_twice_real_time_gets_no_early_cut() -> None:
    """Audio arriving in real time (100 ms every 100 ms) could not keep up after an early cut:
    the first sentence stays one clip; arriving 4x faster than it plays, it is cut."""
    pcm = speech_like_pcm16(1500, seed=6)
    step = 100 * PER_MS
    for interval, cuts in ((0.1, 0), (0.025, 1)):
        splitter = ClipSplitter(300)
        pieces = [p for i in range(0, len(pcm), step)
                  for p in splitter.feed(pcm[i : i + step], i // step * interval)]  # fmt: skip
        assert pieces.count(CUT) == cuts
