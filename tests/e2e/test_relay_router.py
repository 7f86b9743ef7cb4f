"""relay-router end to end: simulated ConversationRelay ↔ voiceagent ↔ fake Inworld Router."""

from __future__ import annotations

import pytest

from tests.rig import KEY, RELAY, Rig, StartRig, make_router, rig_config
from voiceagent.audio import WavFormat
from voiceagent.sim.fake_router import RouterFault
from voiceagent.sim.script import Listen, Pause, PressKey, Say, Step


def asks(*texts: str) -> list[Step]:
    """Hear the greeting, then say each text and hear the reply."""
    steps: list[Step] = [Listen()]
    for text in texts:
        steps += [Say(text), Listen()]
    return steps


def barge_in(first: str, after_ms: float, then: str) -> list[Step]:
    """Say `first`, talk over the reply once `after_ms` of it played, say `then`, listen."""
    return [Listen(), Say(first), Listen("playing", after_ms), Say(then), Listen()]


def _clip_types(record: object) -> list[str]:
    return [m["type"] for m in record.messages]  # type: ignore[attr-defined]


async def test_greeting_is_spoken_in_the_inworld_voice_through_the_router(rig: Rig) -> None:
    """On setup the Router is asked to repeat the greeting with the number's voice; it plays."""
    record = await rig.place_call(RELAY, [Listen()])
    first = rig.router.requests[0].body
    assert first is not None and first.audio is not None and first.audio.voice == "Clive"
    assert rig.router.requests[0].messages == [
        {"role": "system", "content": "Repeat the following greeting exactly as given."},
        {"role": "user", "content": "Hello there!"},
    ]
    greeting = record.turns[0]
    assert greeting.clips and all(c.valid for c in greeting.clips)
    assert "welcomeGreeting" not in record.relay_attributes


async def test_three_turns_send_the_whole_history_each_time(rig: Rig) -> None:
    """Each final prompt makes one Router request carrying system + every earlier turn."""
    await rig.place_call(RELAY, asks("One?", "Two?", "Three?"))
    requests = rig.router.requests
    assert len(requests) == 4
    assert requests[3].messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "assistant", "content": "Hello there! "},
        {"role": "user", "content": "One?"},
        {"role": "assistant", "content": "You said: One. Is there anything else I can do? "},
        {"role": "user", "content": "Two?"},
        {"role": "assistant", "content": "You said: Two. Is there anything else I can do? "},
        {"role": "user", "content": "Three?"},
    ]
    assert all(r.authorization == f"Basic {KEY}" for r in requests)


async def test_first_play_is_sent_before_the_router_stream_ends(start_rig: StartRig) -> None:
    """The first clip's `play` reaches Twilio while the Router is still synthesizing."""
    rig = await start_rig(router=make_router(sentence_s=0.3))
    record = await rig.place_call(RELAY, asks("Tell me something."))
    turn, request = record.turns[1], rig.router.requests[1]
    shown = request.first_segment_shown_complete
    assert turn.first_play_at is not None and shown is not None and request.finished is not None
    assert turn.first_play_at < shown < request.finished


async def test_clips_are_8khz_ulaw_wav_of_the_sentence_duration(rig: Rig) -> None:
    """Every clip is a valid 8 kHz mono µ-law WAV as long as its sentence's audio."""
    record = await rig.place_call(RELAY, asks("Hi."))
    clips = record.turns[1].clips
    sentences = rig.router.requests[1].sentences
    assert len(clips) == len(sentences) == 2
    for clip, sentence in zip(clips, sentences, strict=True):
        assert clip.valid, clip.error
        assert clip.content_type == "audio/wav" and clip.wav_format == WavFormat.ULAW
        assert clip.sample_rate == 8000 and clip.bits_per_sample == 8
        expected_ms = len(sentence + " ") * 40.0
        assert abs(clip.duration_ms - expected_ms) < 5


async def test_interrupt_aborts_the_stream_and_keeps_only_the_heard_sentences(
    start_rig: StartRig,
) -> None:
    """A barge-in mid-reply aborts the Router request; history keeps what the caller heard."""
    router = make_router(sentence_s=0.4)
    router.answers.extend(["Hello there!", "First part here. Second part now. Third part last."])
    rig = await start_rig(router=router)
    first_ms = len("First part here. ") * 40.0
    record = await rig.place_call(RELAY, barge_in("Talk.", first_ms + 100, "Stop."))
    talk, after = rig.router.requests[1], rig.router.requests[2]
    assert talk.aborted and talk.finished is None
    assert after.messages[-2:] == [
        {"role": "assistant", "content": "First part here. "},
        {"role": "user", "content": "Stop."},
    ]
    assert record.turns[1].interrupted
    assert len(record.turns[1].clips) == 2  # the third sentence was never announced


async def test_dtmf_reaches_the_agent_as_user_input(start_rig: StartRig) -> None:
    """A key press becomes a user message worded by the number's dtmf_template."""
    rig = await start_rig(config=rig_config(relay={"dtmf_template": "Key {digit} pressed."}))
    await rig.place_call(RELAY, [Listen(), PressKey("7"), Listen()])
    assert rig.router.requests[1].messages[-1] == {"role": "user", "content": "Key 7 pressed."}


async def test_twilio_voice_streams_text_tokens_untrimmed(start_rig: StartRig) -> None:
    """voice_source twilio: no audio block; deltas go out as text tokens ending with last."""
    relay = {"voice_source": "twilio", "greeting_source": "twilio"}
    rig = await start_rig(config=rig_config(relay=relay))
    record = await rig.place_call(RELAY, asks("Hi."))
    request = rig.router.requests[0]
    assert request.body is not None and request.body.audio is None
    assert record.relay_attributes["ttsProvider"] == "Google"
    assert record.relay_attributes["welcomeGreeting"] == "Hello there!"
    texts = [m for m in record.messages if m["type"] == "text"]
    assert "play" not in _clip_types(record)
    assert "".join(m["token"] for m in texts) == "You said: Hi. Is there anything else I can do? "
    last = {k: texts[-1].get(k) for k in ("type", "token", "last")}
    assert texts[0]["token"] == "You " and last == {"type": "text", "token": "", "last": True}
    assert record.turns[1].text == "You said: Hi. Is there anything else I can do? "
    assert request.messages[1] == {"role": "assistant", "content": "Hello there!"}


@pytest.mark.parametrize("style", ["openai", "grpc"])
async def test_router_500_is_an_apology_and_the_call_goes_on(
    start_rig: StartRig, style: str
) -> None:
    """A Router 500 (either body shape): the caller hears the apology, the next turn works."""
    router = make_router()
    router.faults.extend([None, RouterFault("http", 500, style, "model exploded")])  # type: ignore[arg-type]
    rig = await start_rig(router=router)
    record = await rig.place_call(RELAY, asks("Break.", "Again."))
    failed, next_turn = record.turns[1], record.turns[2]
    assert failed.text == "Sorry, a glitch." and not failed.clips
    assert next_turn.clips and all(c.valid for c in next_turn.clips)
    assert rig.router.requests[1].status == 500 and len(rig.router.requests) == 3


@pytest.mark.parametrize("kind", ["stall", "drop"])
async def test_mid_stream_stall_or_drop_plays_what_came_then_apologises(
    start_rig: StartRig, kind: str
) -> None:
    """A stall or drop after one sentence: its clip still plays, then the apology, call goes on."""
    router = make_router()
    router.faults.extend([None, RouterFault(kind, after_sentences=1)])  # type: ignore[arg-type]
    rig = await start_rig(router=router, router_first_byte_timeout=0.3)
    record = await rig.place_call(RELAY, asks("Break.", "Again."))
    failed = record.turns[1]
    assert len(failed.clips) == 1 and failed.clips[0].valid
    assert failed.text == "Sorry, a glitch."
    kinds = [m["type"] for m in record.messages if failed.sent_at <= m["_at"]]
    assert kinds[:2] == ["play", "text"]
    assert record.turns[2].clips and len(rig.router.requests) == 3
    history = [m["content"] for m in rig.router.requests[2].messages]
    assert history[-3:-1] == ["You said: Break. ", "Sorry, a glitch."]  # heard, and the apology


async def test_no_first_byte_in_time_is_an_apology(start_rig: StartRig) -> None:
    """A Router that never answers: after the first-byte timeout the caller hears the apology."""
    router = make_router()
    router.faults.extend([None, RouterFault("stall", after_sentences=0)])
    rig = await start_rig(router=router, router_first_byte_timeout=0.3)
    record = await rig.place_call(RELAY, asks("Hello?", "Still there?"))
    assert record.turns[1].text == "Sorry, a glitch." and not record.turns[1].clips
    assert record.turns[2].clips and rig.router.requests[1].aborted


async def test_new_prompt_during_a_reply_supersedes_it(start_rig: StartRig) -> None:
    """A prompt while the reply is still generating aborts it; only heard audio stays in history."""
    rig = await start_rig(router=make_router(ttfb_s=0.3))
    script = [Listen(), Say("Talk."), Pause(100), Say("Actually, stop."), Listen()]
    record = await rig.place_call(RELAY, script)
    talk, after = rig.router.requests[1], rig.router.requests[2]
    assert talk.aborted and talk.finished is None
    assert [m["content"] for m in after.messages[-2:]] == ["Talk.", "Actually, stop."]
    assert record.turns[2].clips and all(c.valid for c in record.turns[2].clips)


async def test_content_mirror_does_not_duplicate_speech(start_rig: StartRig) -> None:
    """A Router that mirrors transcripts into delta.content still gives one clip per sentence."""
    rig = await start_rig(router=make_router(mirror_content=True))
    record = await rig.place_call(RELAY, asks("Hi."))
    assert len(record.turns[1].clips) == 2
    assert rig.router.requests[1].messages[1]["content"] == "Hello there! "


async def test_interrupt_of_twilio_voice_keeps_the_spoken_prefix(start_rig: StartRig) -> None:
    """With Twilio's voice, history keeps utteranceUntilInterrupt: the words actually spoken."""
    router = make_router(sentence_s=1.0)
    answer = "One two three four five six seven eight nine ten eleven twelve."
    router.answers.extend(["Hello there!", answer, "Okay.", "Okay."])
    rig = await start_rig(config=rig_config(relay={"voice_source": "twilio"}), router=router)
    await rig.place_call(RELAY, barge_in("Count.", 600, "Stop."))
    talk, after = rig.router.requests[1], rig.router.requests[2]
    heard = after.messages[-2]
    assert talk.aborted and heard["role"] == "assistant"
    assert heard["content"] and answer.startswith(heard["content"])
    assert len(heard["content"]) < len(answer) / 2
