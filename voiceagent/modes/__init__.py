"""Modes: the integrations a number can use, looked up by the config's mode name.

- `realtime-passthrough` (realtime_passthrough.py): Media Streams ↔ Inworld Realtime.
- `relay-router` (relay_router.py): ConversationRelay ↔ Inworld Router (LLM + TTS).

`registry.py` names them and holds the registry `create_app` builds; `base.py` says what a mode
is; `call_run.py` is the call as a mode sees it; `lifecycle.py` runs a call around a mode.
"""
