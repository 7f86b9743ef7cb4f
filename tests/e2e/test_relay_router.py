"""relay-router end to end: simulated ConversationRelay ↔ voiceagent ↔ fake Inworld Router."""

from __future__ import annotations

import pytest

from tests.e2e.relay_harness import KEY, relay_config, relay_rig
from voiceagent.audio import WavFormat
from voiceagent.sim.fake_router import FakeRouter, RouterFault
from voiceagent.sim.relay_caller import Interrupt, Pause, PressKey, Say


def _clip_types(record: object) -> list[str]:
    return [m["type"] for m in record.messages]  # type: ignore[attr-defined]


async def test_greeting_is_spoken_in_the_inworld_voice_through_the_router() -> None:
    """On setup the Router is asked to repeat the greeting with the number's voice; it plays."""
    async with relay_rig() as rig:
        record = await rig.call([])
        first = rig.router.requests[0].body
        assert first is not None and first.audio is not None and first.audio.voice == "Clive"
        assert rig.router.requests[0].messages == [
            {"role": "system", "content": "Repeat the following greeting exactly as given."},
            {"role": "user", "content": "Hello there!"},
        ]
        greeting = record.turns[0]
        assert greeting.clips and all(c.valid for c in greeting.clips)
        assert "welcomeGreeting" not in record.relay_attributes


async def test_three_turns_send_the_whole_history_each_time() -> None:
    """Each final prompt makes one Router request carrying system + every earlier turn."""
    async with relay_rig() as rig:
        await rig.call([Say("One?"), Say("Two?"), Say("Three?")])
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


async def test_first_play_is_sent_before_the_router_stream_ends() -> None:
    """The first clip's `play` reaches Twilio while the Router is still synthesizing."""
    router = FakeRouter(api_key=KEY, sentence_s=0.3, ms_per_char=40.0)
    async with relay_rig(router=router) as rig:
        record = await rig.call([Say("Tell me something.")])
        turn, request = record.turns[1], rig.router.requests[1]
        assert turn.first_play_at is not None and request.finished is not None
        assert turn.first_play_at < request.first_segment_shown_complete < request.finished


async def test_clips_are_8khz_ulaw_wav_of_the_sentence_duration() -> None:
    """Every clip is a valid 8 kHz mono µ-law WAV as long as its sentence's audio."""
    async with relay_rig() as rig:
        record = await rig.call([Say("Hi.")])
        clips = record.turns[1].clips
        sentences = rig.router.requests[1].sentences
        assert len(clips) == len(sentences) == 2
        for clip, sentence in zip(clips, sentences, strict=True):
            assert clip.valid, clip.error
            assert clip.content_type == "audio/wav" and clip.wav_format == WavFormat.ULAW
            assert clip.sample_rate == 8000 and clip.bits_per_sample == 8
            expected_ms = len(sentence + " ") * 40.0
            assert abs(clip.duration_ms - expected_ms) < 5


async def test_interrupt_aborts_the_stream_and_keeps_only_the_heard_sentences() -> None:
    """A barge-in mid-reply aborts the Router request; history keeps what the caller heard."""
    router = FakeRouter(api_key=KEY, sentence_s=0.4, ms_per_char=40.0)
    router.answers.extend(["Hello there!", "First part here. Second part now. Third part last."])
    async with relay_rig(router=router) as rig:
        first_ms = len("First part here. ") * 40.0
        record = await rig.call([Say("Talk."), Interrupt(first_ms + 100, "Stop.")])
        talk, after = rig.router.requests[1], rig.router.requests[2]
        assert talk.aborted and talk.finished is None
        assert after.messages[-2:] == [
            {"role": "assistant", "content": "First part here. "},
            {"role": "user", "content": "Stop."},
        ]
        assert record.turns[1].interrupted
        assert len(record.turns[1].clips) == 2  # the third sentence was never announced


async def test_dtmf_reaches_the_agent_as_user_input() -> None:
    """A key press becomes a user message worded by the number's dtmf_template."""
    async with relay_rig(relay_config(dtmf_template="Key {digit} pressed.")) as rig:
        await rig.call([PressKey("7")])
        assert rig.router.requests[1].messages[-1] == {"role": "user", "content": "Key 7 pressed."}


async def test_twilio_voice_streams_text_tokens_untrimmed() -> None:
    """voice_source twilio: no audio block; deltas go out as text tokens ending with last."""
    config = relay_config(voice_source="twilio", greeting_source="twilio")
    async with relay_rig(config) as rig:
        record = await rig.call([Say("Hi.")])
        request = rig.router.requests[0]
        assert request.body is not None and request.body.audio is None
        assert record.relay_attributes["ttsProvider"] == "Google"
        assert record.relay_attributes["welcomeGreeting"] == "Hello there!"
        texts = [m for m in record.messages if m["type"] == "text"]
        assert "play" not in _clip_types(record)
        assert (
            "".join(m["token"] for m in texts) == "You said: Hi. Is there anything else I can do? "
        )
        assert texts[0]["token"] == "You " and texts[-1] == {
            "type": "text",
            "token": "",
            "last": True,
            "_at": texts[-1]["_at"],
        }
        assert record.turns[1].text == "You said: Hi. Is there anything else I can do? "
        assert request.messages[1] == {"role": "assistant", "content": "Hello there!"}


@pytest.mark.parametrize("style", ["openai", "grpc"])
async def test_router_500_is_an_apology_and_the_call_goes_on(style: str) -> None:
    """A Router 500 (either body shape): the caller hears the apology, the next turn works."""
    router = FakeRouter(api_key=KEY)
    router.faults.extend([None, RouterFault("http", 500, style, "model exploded")])  # type: ignore[arg-type]
    async with relay_rig(router=router) as rig:
        record = await rig.call([Say("Break."), Say("Again.")])
        failed, next_turn = record.turns[1], record.turns[2]
        assert failed.text == "Sorry, a glitch." and not failed.clips
        assert next_turn.clips and all(c.valid for c in next_turn.clips)
        assert rig.router.requests[1].status == 500 and len(rig.router.requests) == 3


@pytest.mark.parametrize("kind", ["stall", "drop"])
async def test_mid_stream_stall_or_drop_plays_what_came_then_apologises(kind: str) -> None:
    """A stall or drop after one sentence: its clip still plays, then the apology, call goes on."""
    router = FakeRouter(api_key=KEY)
    router.faults.extend([None, RouterFault(kind, after_sentences=1)])  # type: ignore[arg-type]
    async with relay_rig(router=router, router_first_byte_timeout=0.3) as rig:
        record = await rig.call([Say("Break."), Say("Again.")])
        failed = record.turns[1]
        assert len(failed.clips) == 1 and failed.clips[0].valid
        assert failed.text == "Sorry, a glitch."
        kinds = [m["type"] for m in record.messages if failed.sent_at <= m["_at"]]
        assert kinds[:2] == ["play", "text"]
        assert record.turns[2].clips and len(rig.router.requests) == 3
        assert rig.router.requests[2].messages[-2]["content"] == "You said: Break. "


async def test_no_first_byte_in_time_is_an_apology() -> None:
    """A Router that never answers: after the first-byte timeout the caller hears the apology."""
    router = FakeRouter(api_key=KEY)
    router.faults.extend([None, RouterFault("stall", after_sentences=0)])
    async with relay_rig(router=router, router_first_byte_timeout=0.3) as rig:
        record = await rig.call([Say("Hello?"), Say("Still there?")])
        assert record.turns[1].text == "Sorry, a glitch." and not record.turns[1].clips
        assert record.turns[2].clips and rig.router.requests[1].aborted


async def test_new_prompt_during_a_reply_supersedes_it() -> None:
    """A prompt while the reply is still generating aborts it; only heard audio stays in history."""
    router = FakeRouter(api_key=KEY, ttfb_s=0.3, ms_per_char=40.0)
    async with relay_rig(router=router) as rig:
        script = [Say("Talk.", listen=False), Pause(0.1), Say("Actually, stop.")]
        record = await rig.call(script)
        talk, after = rig.router.requests[1], rig.router.requests[2]
        assert talk.aborted and talk.finished is None
        assert [m["content"] for m in after.messages[-2:]] == ["Talk.", "Actually, stop."]
        assert record.turns[2].clips and all(c.valid for c in record.turns[2].clips)


async def test_content_mirror_does_not_duplicate_speech() -> None:
    """A Router that mirrors transcripts into delta.content still gives one clip per sentence."""
    router = FakeRouter(api_key=KEY, mirror_content=True, ms_per_char=40.0)
    async with relay_rig(router=router) as rig:
        record = await rig.call([Say("Hi.")])
        assert len(record.turns[1].clips) == 2
        assert rig.router.requests[1].messages[1]["content"] == "Hello there! "


async def test_interrupt_of_twilio_voice_keeps_the_spoken_prefix() -> None:
    """With Twilio's voice, history keeps utteranceUntilInterrupt: the words actually spoken."""
    router = FakeRouter(api_key=KEY, sentence_s=1.0)
    answer = "One two three four five six seven eight nine ten eleven twelve."
    router.answers.extend(["Hello there!", answer, "Okay.", "Okay."])
    async with relay_rig(relay_config(voice_source="twilio"), router=router) as rig:
        await rig.call([Say("Count."), Interrupt(600, "Stop.")])
        talk, after = rig.router.requests[1], rig.router.requests[2]
        heard = after.messages[-2]
        assert talk.aborted and heard["role"] == "assistant"
        assert heard["content"] and answer.startswith(heard["content"])
        assert len(heard["content"]) < len(answer) / 2
