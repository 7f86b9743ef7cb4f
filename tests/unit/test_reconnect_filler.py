"""The reconnect filler without sockets: its WAV read and checked at config load (with the YAML
path of a bad one), reloaded with the config, and the gap machine that decides when it plays."""

from __future__ import annotations

import struct
from pathlib import Path

import orjson
import pytest

from voiceagent.audio import WavFormat, speech_like_pcm16, speech_like_ulaw, wrap_wav
from voiceagent.config import load_config
from voiceagent.config_errors import ConfigFileError
from voiceagent.config_filler import MAX_FILLER_MS, read_filler
from voiceagent.runtime import ConfigHolder
from voiceagent.session.gap_filler import FILLER_MARK, FillerStep, GapFiller

N = "+18005550101"
SID = "MZ" + "0" * 32


def _config(tmp_path: Path, filler: str, where: str = "number") -> Path:
    knobs = f"realtime:\n      upstream_reconnect:\n        filler: {filler}\n"
    if where == "number":
        text = f'numbers:\n  "{N}":\n    mode: realtime-passthrough\n    {knobs}'
    else:  # an arm of an experiment
        text = (f'numbers:\n  "{N}":\n    experiment:\n      name: x\n      arms:\n'
                "        - {name: a, mode: relay-router, weight: 1}\n"
                "        - name: b\n          mode: realtime-passthrough\n          weight: 1\n"
                "          realtime: {upstream_reconnect: {filler: " + filler + "}}\n")  # fmt: skip
    path = tmp_path / "numbers.yaml"
    path.write_text(text)
    return path


def _pcm24_wav() -> bytes:
    """A 24-bit PCM WAV (a format the filler does not take)."""
    data = b"\x00\x01\x02" * 800
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 24000, 3, 24)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data))
    return b"RIFF" + struct.pack("<I", len(body) + len(data)) + body + data


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read filler file"),
        (b"not a wav at all", "not a usable WAV"),
        (wrap_wav(speech_like_ulaw(MAX_FILLER_MS + 500), 8000), "at most 5000 ms"),
        (_pcm24_wav(), "24-bit samples is not supported (use 8 kHz µ-law mono"),
        (wrap_wav(b"", 8000), "holds no audio"),
    ],
)
@pytest.mark.parametrize("where", ["number", "arm"])
def test_a_bad_filler_fails_the_config_with_its_yaml_path_and_file(
    tmp_path: Path, content: bytes | None, message: str, where: str
) -> None:
    """A missing, non-WAV, too long, wrongly encoded or empty filler fails check-config with
    the YAML path of the setting, the file's name and what is wrong."""
    clip = tmp_path / "filler.wav"
    if content is not None:
        clip.write_bytes(content)
    with pytest.raises(ConfigFileError) as err:
        load_config(_config(tmp_path, str(clip), where))
    problem = err.value.problems[0]  # (an arm also fails its list: a knock-on problem)
    where_path = "realtime" if where == "number" else "experiment.arms.1.realtime"
    assert problem.path == f"numbers.{N}.{where_path}.upstream_reconnect.filler"
    assert str(clip) in problem.message and message in problem.message


def test_wavs_are_converted_once_to_8k_ulaw(tmp_path: Path) -> None:
    """8 kHz µ-law mono is taken as is; 16 kHz PCM and 44.1 kHz stereo become 8 kHz µ-law of
    the same length."""
    ulaw = speech_like_ulaw(400)
    (tmp_path / "a.wav").write_bytes(wrap_wav(ulaw, 8000))
    pcm = speech_like_pcm16(500, 16000)
    (tmp_path / "b.wav").write_bytes(wrap_wav(pcm, 16000, 1, WavFormat.PCM))
    stereo = speech_like_pcm16(250, 44100) * 2  # as many frames of two channels: 250 ms
    (tmp_path / "c.wav").write_bytes(wrap_wav(stereo, 44100, 2, WavFormat.PCM))
    assert read_filler(str(tmp_path / "a.wav")) == ulaw
    assert len(read_filler(str(tmp_path / "b.wav"))) == 4000  # 500 ms at 8 bytes/ms
    assert len(read_filler(str(tmp_path / "c.wav"))) == 2000


def test_reloading_the_config_reloads_the_filler(tmp_path: Path) -> None:
    """The clip is read at load; a reload reads the file again, and a reload that finds it
    broken keeps the config and clip in service."""
    clip = tmp_path / "filler.wav"
    clip.write_bytes(wrap_wav(speech_like_ulaw(300), 8000))
    path = _config(tmp_path, str(clip))
    holder = ConfigHolder(load_config(path))
    assert len(holder.fillers.get(str(clip)) or b"") == 2400
    clip.write_bytes(wrap_wav(speech_like_ulaw(700), 8000))
    assert holder.reload(path) == 2
    assert len(holder.fillers.get(str(clip)) or b"") == 5600
    clip.write_bytes(b"broken")
    with pytest.raises(ConfigFileError):
        holder.reload(path)
    assert holder.version == 2 and len(holder.fillers.get(str(clip)) or b"") == 5600


def _events(frames: list[str]) -> list[str]:
    return [orjson.loads(f)["event"] for f in frames]


def test_a_slow_gap_plays_the_filler_once_then_the_reply_clears_it() -> None:
    """Due while the cut reply is still owed: media frames then its mark, once per gap; the
    new reply's audio clears it; a second drop is a new gap."""
    filler = GapFiller(speech_like_ulaw(250), SID)
    filler.gap_started(reply_owed=True)
    filler.reconnected()  # the session is back, its reply is not
    assert filler.due(agent_playing=False) is FillerStep.PLAY
    frames = filler.frames()
    assert _events(frames) == ["media"] * 3 + ["mark"]
    assert orjson.loads(frames[-1])["mark"]["name"] == FILLER_MARK
    assert filler.due(agent_playing=False) is FillerStep.NONE  # once per gap
    assert _events(filler.agent_audio()) == ["clear"]
    assert filler.agent_audio() == [] and not filler.playing
    filler.gap_started(reply_owed=False)
    assert filler.due(agent_playing=False) is FillerStep.PLAY


def test_no_filler_when_the_gap_closed_in_time_or_nobody_waits() -> None:
    """The reply's audio came first, or the session is back with no reply owed: nothing to
    play; while earlier agent audio still plays, ask again later."""
    filler = GapFiller(speech_like_ulaw(250), SID)
    filler.gap_started(reply_owed=True)
    assert filler.agent_audio() == []  # no clear: nothing was played
    assert filler.due(agent_playing=False) is FillerStep.NONE
    filler.gap_started(reply_owed=False)
    filler.reconnected()
    assert filler.due(agent_playing=False) is FillerStep.NONE
    filler.gap_started(reply_owed=True)
    assert filler.due(agent_playing=True) is FillerStep.LATER


def test_a_played_out_filler_needs_no_clear_and_a_failed_reconnect_clears_one_playing() -> None:
    """Its own mark echoed: played out, no clear at the reply; reconnecting failed or the
    caller spoke while it plays: a clear."""
    filler = GapFiller(speech_like_ulaw(100), SID)
    filler.gap_started(reply_owed=True)
    filler.due(agent_playing=False)
    assert filler.mark_echoed(FILLER_MARK) and not filler.mark_echoed("resp_1:3")
    assert filler.agent_audio() == []
    filler.gap_started(reply_owed=True)
    filler.due(agent_playing=False)
    assert _events(filler.give_up()) == ["clear"]
    filler.gap_started(reply_owed=True)
    filler.due(agent_playing=False)
    assert _events(filler.barge_in()) == ["clear"] and filler.give_up() == []
