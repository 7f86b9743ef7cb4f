"""The one test rig: the real app on a 127.0.0.1 TestServer, the fake Inworld Realtime, the fake
Router, and the simulated Twilio, all over real sockets. Nothing here writes ./voiceagent.sqlite3.

Fixtures
--------
``rig``            a running ``tests.rig.Rig`` with the default config and fakes.
``start_rig``      factory for any other set-up; every rig it starts stops at teardown::

                       rig = await start_rig(config=..., realtime=..., router=..., records=...,
                                             **settings)

                   ``config``    a ``Config`` (``rig_config(relay={...}, **{number: entry})``),
                                 a YAML ``Path`` (becomes CONFIG_PATH: reload tests), or the
                                 default ``rig_config()``;
                   ``realtime``  ``realtime_options(**changes)`` for the fake Inworld Realtime;
                   ``router``    ``make_router(**changes)``, a FakeRouter not yet started (set
                                 ``faults`` / ``answers`` on it first);
                   ``records``   True: call records go to a fresh SQLite file in tmp_path
                                 (``rig.settings.database_url``); default: no database;
                   ``**settings`` override any Settings field (``max_frame_bytes=4096``, ...).
``fake_realtime``  a running FakeInworldRealtime with ``realtime_options()``, no app.
``fake_router``    a running FakeRouter with the test knobs, no app.

Rig
---
``rig.place_call(to, script, **kw)``  one simulated call (``voiceagent.sim.caller``): the signed
    ``/voice`` webhook, then Media Streams or ConversationRelay as the TwiML says; returns a
    ``MediaCallRecord`` / ``RelayCallRecord`` (a plain ``CallRecord`` for a refusal). ``kw``:
    ``call_sid``, ``from_``, ``bad_signature``, ``twiml`` (start from TwiML, e.g. an action's),
    Media ``record_timing`` / ``skip_start``, relay ``speed`` / ``quiet_s``.
``rig.calls``  the call milestones (``started``, ``turns``, ``ended``, ``turns_of(sid)``), passed
    on to the app's own sinks (metrics, records); ``await rig.ended(sid)`` waits for one call.
``rig.post_signed(path, form, sign=True)``  a Twilio-signed POST (``webhook_form(to)`` builds
    the /voice form): ``(status, body)``.
``rig.realtime`` / ``rig.router``  the fakes and what they received; ``rig.services`` (the app's
    Services), ``rig.app``, ``rig.settings``, ``rig.base_url``, ``rig.target``, ``rig.http``;
    ``await rig.stop()`` stops the app early (its records are then flushed).

Numbers (``tests.rig``): REALTIME_A, REALTIME_B, BAD_STT (realtime), RELAY, FAILOVER (realtime
falling back to relay), EXPERIMENT (realtime vs relay by CallSid). Scripts use the one caller
vocabulary of ``voiceagent.sim.script``: Say, Listen, Pause, PressKey, SendRaw, HangUp, Drop.

    from tests.rig import REALTIME_A, Rig, StartRig   # types and numbers: import from tests.rig
    from voiceagent.sim.script import HangUp, Listen

    async def test_greeting(rig: Rig) -> None:
        record = await rig.place_call(REALTIME_A, [Listen(), HangUp()])
        assert record.heard_ms > 0
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.rig import Rig, StartRig, make_router, realtime_options, running_rig
from voiceagent.sim.fake_inworld_realtime import FakeInworldRealtime
from voiceagent.sim.fake_router import FakeRouter


@pytest.fixture
async def start_rig(tmp_path: Path) -> AsyncIterator[StartRig]:
    """Start rigs (see the module docstring); all stop when the test ends."""
    numbering = itertools.count(1)
    async with contextlib.AsyncExitStack() as stack:

        async def start(*, records: bool = False, **kw: Any) -> Rig:
            if records:
                db = tmp_path / f"records-{next(numbering)}.sqlite3"
                kw.setdefault("database_url", f"sqlite+aiosqlite:///{db}")
            return await stack.enter_async_context(running_rig(**kw))

        yield start


@pytest.fixture
async def rig(start_rig: StartRig) -> Rig:
    """The app with the default config, both fakes, no database."""
    return await start_rig()


@pytest.fixture
async def fake_realtime() -> AsyncIterator[FakeInworldRealtime]:
    """A running fake Inworld Realtime with the test options."""
    async with FakeInworldRealtime(realtime_options()) as fake:
        yield fake


@pytest.fixture
async def fake_router() -> AsyncIterator[FakeRouter]:
    """A running fake Router with the test knobs."""
    router = make_router()
    await router.start()
    try:
        yield router
    finally:
        await router.close()
