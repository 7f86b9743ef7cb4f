"""Modes: the registry of integrations, looked up by the config's mode name.

- `realtime-passthrough` (realtime_passthrough.py): Media Streams ↔ Inworld Realtime.
- `relay-router` (relay_router.py): ConversationRelay ↔ Inworld Router (LLM + TTS).
"""

from __future__ import annotations

import importlib

from voiceagent.modes.base import Mode

MODES: dict[str, Mode] = {}


def register(mode: Mode) -> Mode:
    """Add a mode to the registry (each mode module registers itself on import)."""
    MODES[mode.name] = mode
    return mode


def load_modes() -> dict[str, Mode]:
    """Import every built-in mode and return the registry."""
    for module in ("realtime_passthrough", "relay_router"):
        importlib.import_module(f"voiceagent.modes.{module}")
    return MODES
