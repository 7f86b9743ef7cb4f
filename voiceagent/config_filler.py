"""Reconnect fillers: the WAV clip `realtime.upstream_reconnect.filler` names, read and checked
when the config loads, as 8 kHz µ-law ready for Twilio.

Accepted: 8 kHz µ-law mono as is; any other µ-law or 16-bit PCM WAV (mono or stereo,
8-48 kHz) is converted once, at load, with the project's audio helpers (soxr resampling). At
most `MAX_FILLER_MS` of audio in a file of at most `MAX_FILLER_FILE_BYTES`. Relative paths are
relative to the server's working directory, like the do-not-call files.

The config models keep the path only (a call's plan travels as JSON between instances); the
clips themselves live in `FillerClips`, rebuilt by `ConfigHolder` on every load and reload.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
from pydantic import BaseModel, ValidationInfo

from voiceagent.audio import (
    ULAW_RATE,
    WavFormat,
    parse_wav,
    resample_pcm16,
    ulaw_decode,
    ulaw_encode,
)
from voiceagent.errors import ConfigError, ProtocolError

MAX_FILLER_MS: Final = 5000
MAX_FILLER_FILE_BYTES: Final = 2 * 1024 * 1024
_RATES: Final = range(8000, 48001)
_ACCEPTED: Final = "8 kHz µ-law mono, or µ-law / 16-bit PCM at 8-48 kHz, mono or stereo"


def read_filler(path: str) -> bytes:
    """The clip at `path` as 8 kHz µ-law mono; ConfigError naming the file otherwise."""
    try:
        with Path(path).open("rb") as file:
            blob = file.read(MAX_FILLER_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read filler file: {exc.strerror}", path=path) from exc
    if len(blob) > MAX_FILLER_FILE_BYTES:
        raise ConfigError(f"filler file is over {MAX_FILLER_FILE_BYTES} bytes", path=path)
    try:
        wav = parse_wav(blob)
    except ProtocolError as exc:
        raise ConfigError(f"filler file is not a usable WAV: {exc}", path=path) from None
    if wav.fmt not in (WavFormat.ULAW, WavFormat.PCM) or wav.bits_per_sample != (
        8 if wav.fmt == WavFormat.ULAW else 16
    ):
        raise ConfigError(
            f"filler WAV format {wav.fmt} with {wav.bits_per_sample}-bit samples is not "
            f"supported (use {_ACCEPTED})", path=path,
        )  # fmt: skip
    if wav.channels > 2 or wav.sample_rate not in _RATES:
        raise ConfigError(
            f"filler WAV has {wav.channels} channels at {wav.sample_rate} Hz (use {_ACCEPTED})",
            path=path,
        )
    if wav.duration_ms > MAX_FILLER_MS:
        raise ConfigError(
            f"filler is {wav.duration_ms:.0f} ms long, at most {MAX_FILLER_MS} ms", path=path
        )
    ulaw = _to_ulaw(wav.fmt, wav.sample_rate, wav.channels, wav.data)
    if not ulaw:
        raise ConfigError("filler WAV holds no audio", path=path)
    return ulaw


def _to_ulaw(fmt: int, rate: int, channels: int, data: bytes) -> bytes:
    if fmt == WavFormat.ULAW and rate == ULAW_RATE and channels == 1:
        return data
    pcm = ulaw_decode(data) if fmt == WavFormat.ULAW else data
    frame = 2 * channels
    samples = np.frombuffer(pcm[: len(pcm) // frame * frame], dtype="<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype("<i2")
    return ulaw_encode(resample_pcm16(samples.tobytes(), rate, ULAW_RATE))


def check_filler(path: str | None, info: ValidationInfo) -> str | None:
    """A pydantic validator's check: the file reads as a filler clip (ValueError if not).

    Only while a config file is loaded (`parse_config` always passes a context): a call's plan
    read back from the shared call store must not depend on the file still being there."""
    if path is not None and info.context is not None:
        try:
            read_filler(path)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    return path


class FillerClips:
    """Every filler a config names, read once: path → 8 kHz µ-law."""

    def __init__(self, clips: dict[str, bytes] | None = None) -> None:
        self._clips = clips or {}

    @classmethod
    def of(cls, config: BaseModel) -> FillerClips:
        """Read the filler of every `upstream_reconnect` anywhere in `config`."""
        return cls({path: read_filler(path) for path in sorted(_filler_paths(config))})

    def get(self, path: str | None) -> bytes | None:
        """The clip of `path`; None for no path or one the current config does not name."""
        return None if path is None else self._clips.get(path)

    def __len__(self) -> int:
        return len(self._clips)


def _filler_paths(node: object) -> set[str]:
    """Walk the config's models, dicts and tuples for `filler` fields of reconnect knobs."""
    found: set[str] = set()
    if isinstance(node, BaseModel):
        filler = getattr(node, "filler", None)
        if isinstance(filler, str) and "filler_after_ms" in type(node).model_fields:
            found.add(filler)
        for name in type(node).model_fields:
            found |= _filler_paths(getattr(node, name))
    elif isinstance(node, dict):
        for value in node.values():
            found |= _filler_paths(value)
    elif isinstance(node, tuple | list):
        for value in node:
            found |= _filler_paths(value)
    return found
