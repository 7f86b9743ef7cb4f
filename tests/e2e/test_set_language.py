"""`set_language` in whole calls, both modes: the fakes call it when the caller asks, the
call switches its STT, TTS and voice, and the record shows the languages used."""

from __future__ import annotations

from typing import Any

import orjson

from tests.rig import StartRig, make_router, rig_config
from tests.rig import realtime_options as options
from voiceagent.sim.fake_tool_calls import ScriptedToolCall
from voiceagent.sim.script import Drop, HangUp, Listen, Say

REALTIME = "+18005550131"
RELAY = "+18005550132"
SPANISH = "Hablo español, por favor."
SWITCH = (ScriptedToolCall("español", "set_language", {"language": "es-ES"}),)
LANGUAGES = [
    {"code": "en-US", "name": "English"},
    {"code": "es-ES", "name": "Spanish", "voice": "Diego", "twilio_voice": "es-ES-Neural2-B",
     "tts_provider": "Google", "stt_language_hints": ["es", "en"]},
]  # fmt: skip


async def _rig(start_rig: StartRig, **kw: Any) -> Any:
    agent = {"greeting": "Hi.", "tools": [{"name": "end_call"}], "languages": LANGUAGES}
    config = rig_config(**{
        REALTIME: {"mode": "realtime-passthrough", "agent": agent},
        RELAY: {"mode": "relay-router", "agent": agent},
    })  # fmt: skip
    realtime = options(transcripts=(SPANISH, "Gracias."), tool_calls=SWITCH)
    router = make_router(tool_calls=SWITCH)
    return await start_rig(config=config, realtime=realtime, router=router, **kw)


async def test_relay_set_language_switches_twilio_and_the_router_voice(start_rig: StartRig) -> None:
    """Relay: the agent's `set_language` sends ConversationRelay's `language` message, the
    TwiML declared the language's Twilio voice, the follow-up reply and later ones use the
    language's Inworld voice, and the call's record (the database) lists the language."""
    rig = await _rig(start_rig, records=True)
    script = [Listen(), Say(SPANISH), Listen(), Say("Gracias."), Listen(), HangUp()]
    record = await rig.place_call(RELAY, script)
    switches = [m for m in record.messages if m.get("type") == "language"]
    assert [(m["ttsLanguage"], m["transcriptionLanguage"]) for m in switches] == [("es-ES",) * 2]
    assert '<Language code="es-ES" ttsProvider="Google" voice="es-ES-Neural2-B"' in record.twiml
    declared = rig.router.requests[1].body.tools
    assert declared and "set_language" in {t["function"]["name"] for t in declared}
    voices = [r.body.audio.voice for r in rig.router.requests if r.body and r.body.audio]
    assert voices[:2] == ["Clive"] * 2, voices  # the greeting, the turn that switched
    assert voices[2:] and set(voices[2:]) == {"Diego"}, voices
    call = await rig.calls.wait_ended(record.call_sid)
    assert call.languages == ["es-ES"] and record.errors_sent == []
    await rig.stop()  # the writer flushes
    values = await rig.call_row(record.call_sid)
    assert values["languages"] == "es-ES" and values["provider_switches"] == 0


async def test_realtime_set_language_sends_a_partial_session_update(start_rig: StartRig) -> None:
    """Realtime: `set_language` is declared, and its call sends a partial `session.update`
    (voice, STT language and hints) before the tool's output; the fake applies it and the
    call records the language."""
    rig = await _rig(start_rig)
    record = await rig.place_call(REALTIME, [Listen(), Say(ms=700), Listen(), HangUp()])
    session = rig.realtime.sessions[-1]
    updates = session.of_type("session.update")
    assert "set_language" in {t["name"] for t in updates[0]["session"]["tools"]}
    partial = updates[1]["session"]
    assert partial["audio"]["output"]["voice"] == "Diego"
    assert partial["audio"]["input"]["transcription"]["language"] == "es-ES"
    assert partial["providerData"]["stt"]["language_hints"] == ["es", "en"]
    assert "instructions" not in partial and "tools" not in partial  # partial: the rest stays
    order = [e["type"] for e in session.events if e["type"] != "input_audio_buffer.append"]
    assert order.index("session.update", 1) < order.index("conversation.item.create", 2)
    outputs = [orjson.loads(o["output"]) for o in session.function_outputs()]
    assert outputs[0]["language"] == "es-ES"
    call = await rig.calls.wait_ended(record.call_sid)
    assert call.languages == ["es-ES"]


async def test_relay_language_survives_an_application_reconnect(start_rig: StartRig) -> None:
    """Relay: after `set_language`, our socket drops and Twilio reopens it (its session stays in
    Spanish): the reconnected leg's Router replies keep the language's Inworld voice."""
    rig = await _rig(start_rig)
    script = [Listen(), Say(SPANISH), Listen(), Drop(), Say("Gracias."), Listen(), HangUp()]
    record = await rig.place_call(RELAY, script)
    assert record.reconnects == 1
    voices = [r.body.audio.voice for r in rig.router.requests if r.body and r.body.audio]
    assert voices[0] == "Clive" and voices[-1] == "Diego", voices
    assert len(voices) >= 4  # the greeting, the switch, its follow-up, the reconnected turn
