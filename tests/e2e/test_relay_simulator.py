"""The simulated ConversationRelay behaves like Twilio: strict with a server that misbehaves,
and interrupting the agent only as the TwiML allows."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.rig import RELAY, StartRig, rig_config
from voiceagent.sim.relay_caller import place_call
from voiceagent.sim.script import Listen, Say
from voiceagent.sim.webhooks import SimTarget

PUBLIC = "https://sim.example.test"
TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Connect action="'
    + PUBLIC
    + '/action"><ConversationRelay url="wss://sim.example.test/ws" /></Connect></Response>'
)


async def test_invalid_messages_get_errors_and_end_posts_handoff() -> None:
    """Bad server messages are answered with `error`; `end` ends with SessionStatus=ended."""
    received: list[str] = []
    actions: list[dict[str, str]] = []

    async def voice(request: web.Request) -> web.Response:
        return web.Response(text=TWIML, content_type="text/xml")

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        async for msg in sock:
            received.append(msg.data)
            if '"prompt"' in msg.data:
                await sock.send_str('{"type":"text","token":null}')
                await sock.send_str('{"type":"play","source":"not a url"}')
                await sock.send_str('{"type":"end","handoffData":"{\\"to\\":\\"human\\"}"}')
        return sock

    async def action(request: web.Request) -> web.Response:
        actions.append({k: str(v) for k, v in (await request.post()).items()})
        return web.Response(text="<Response/>", content_type="text/xml")

    app = web.Application()
    app.router.add_post("/voice", voice)
    app.router.add_get("/ws", ws)
    app.router.add_post("/action", action)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        target = SimTarget(str(server.make_url("")), PUBLIC, "t")
        script = [Say("Hi."), Listen(), Say("Never sent.")]
        record = await place_call(target, "+18005550102", script, speed=20, quiet_s=0.1)
    finally:
        await server.close()
    errors = [m for m in received if '"type":"error"' in m]
    assert len(record.errors_sent) == 2 and len(errors) == 2
    assert record.session_status == "ended" and record.handoff_data == '{"to":"human"}'
    assert actions[0]["SessionStatus"] == "ended" and actions[0]["HandoffData"] == '{"to":"human"}'
    assert actions[0]["CallStatus"] == "in-progress"
    assert not any("Never sent." in m for m in received)


@pytest.mark.parametrize(("interruptible", "interrupted"), [("any", True), ("none", False)])
async def test_speech_over_a_reply_interrupts_only_as_the_twiml_allows(
    start_rig: StartRig, interruptible: str, interrupted: bool
) -> None:
    """Speaking while the agent plays stops its playback (an `interrupt`) only when the TwiML's
    `interruptible` allows speech; either way the words reach the server as a prompt."""
    rig = await start_rig(config=rig_config(relay={"interruptible": interruptible}))
    script = [Listen(), Say("Talk."), Listen("playing", 300), Say("More."), Listen()]
    record = await rig.place_call(RELAY, script)
    assert record.relay_attributes["interruptible"] == interruptible
    assert record.turns[1].interrupted is interrupted and record.barge_ins == int(interrupted)
    assert record.unreported_inputs == []
    assert any(m["content"] == "More." for r in rig.router.requests for m in r.messages)
