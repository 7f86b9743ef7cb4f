"""The registry of modes: their names (what a number's `mode:` says in the YAML) and the mode
object serving each, built by `create_app` (`ModeRegistry(...)`); no mode registers itself.

A mode's name is spelled only here: everything else uses `ModeName` members, and what differs
between modes (does a call hold an Inworld Realtime session, which Twilio protocol does the
phone speak, which config section holds its knobs) is an attribute of the mode or of its name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from voiceagent.modes.base import Mode


class ModeName(StrEnum):
    """The integrations a number may use."""

    REALTIME_PASSTHROUGH = "realtime-passthrough"
    RELAY_ROUTER = "relay-router"

    @property
    def knob_section(self) -> Literal["realtime", "relay"]:
        """The config section (`realtime:` / `relay:`) holding this mode's knobs."""
        return "realtime" if self is ModeName.REALTIME_PASSTHROUGH else "relay"


PhoneProtocol = Literal["media-streams", "conversation-relay"]
"""The Twilio protocol a mode's phone socket speaks."""


class ModeRegistry:
    """The app's modes by name (`registry[plan.mode]`)."""

    def __init__(self, modes: Iterable[Mode]) -> None:
        self._modes = {ModeName(mode.name): mode for mode in modes}

    def __getitem__(self, name: str) -> Mode:
        return self._modes[ModeName(name)]

    def get(self, name: str | None) -> Mode | None:
        """The mode called `name`; None for any other string (e.g. a forged parameter)."""
        try:
            return self._modes.get(ModeName(name)) if name is not None else None
        except ValueError:
            return None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[Mode]:
        return iter(self._modes.values())

    def holding_realtime_sessions(self) -> list[ModeName]:
        """Modes whose calls each hold one Inworld Realtime session (the shared budget)."""
        return [ModeName(mode.name) for mode in self if mode.holds_realtime_session]
