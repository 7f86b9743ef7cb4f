"""One call's whole story: `voiceagent calls show` / `calls list` and `/dashboard/calls/<sid>`
(behind the dashboard's sign-in), read from real records after real calls."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from tests.cli_process import run_cli
from tests.rig import StartRig
from tests.webhooks.conftest import CTX_REALTIME, CTX_RELAY, HOOK_SETTINGS, hooks_config
from voiceagent.sim.hooks_receiver import HooksReceiver
from voiceagent.sim.script import HangUp, Listen, Say
from voiceagent.sim.webhooks import new_sid
from voiceagent.store.records.schema import make_engine, webhook_events

ADMIN = "story-admin-token-0123456789abcdef0123"


async def _delivered(database: str) -> bool:
    engine = make_engine(database)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(webhook_events.c.status))).scalars().all()
    finally:
        await engine.dispose()
    return bool(rows) and set(rows) == {"delivered"}


async def test_calls_show_and_list(start_rig: StartRig, hooks: HooksReceiver) -> None:
    """`calls show` prints plan, context, turns with heard text and split latencies, the end
    and the webhook delivery; `calls list` filters by number."""
    rig = await start_rig(config=hooks_config(hooks), records=True, **HOOK_SETTINGS)
    sid = new_sid("CA")
    await rig.place_call(CTX_REALTIME, [Listen(), Say("Hello?"), Listen(), HangUp()],
                         call_sid=sid)  # fmt: skip
    await rig.place_call(CTX_RELAY, [Listen(), HangUp()])
    await hooks.wait_events(2)
    database = rig.settings.database_url
    for _ in range(100):  # the delivery is recorded just after the receiver's answer
        if await _delivered(database):
            break
        await asyncio.sleep(0.1)
    code, out, err = await run_cli("calls", "--database", database, "show", sid)
    assert code == 0, err
    assert f"call {sid} to {CTX_REALTIME}" in out
    assert "plan: mode realtime-passthrough" in out
    assert "context: applied: variables first_name, open_order; greeting" in out
    assert "agent greeting #0: response" in out and "(upstream" in out and "ours" in out
    assert "heard: " in out
    assert "end: caller_hangup by caller" in out
    assert "webhook call.ended evt_" in out and ": delivered after 1 attempt(s)" in out
    code, out, err = await run_cli("calls", "--database", database, "list", "--number",
                                   CTX_RELAY, "--since", "1h")  # fmt: skip
    assert code == 0, err
    assert CTX_RELAY in out and sid not in out
    code, _, err = await run_cli("calls", "--database", database, "show", new_sid("CA"))
    assert code == 1 and "no call" in err


async def test_calls_show_tells_the_context_without_an_events_hook(
    start_rig: StartRig, hooks: HooksReceiver
) -> None:
    """The call's record keeps how its context settled (names, never values), so `calls show`
    tells it for a number with no events webhook, a fallback included."""
    hooks.context_delay_s = 1.0
    config = hooks_config(hooks, timeout_ms=200, events=False)
    rig = await start_rig(config=config, records=True, **HOOK_SETTINGS)
    sid = new_sid("CA")
    await rig.place_call(CTX_RELAY, [Listen(), HangUp()], call_sid=sid)
    await rig.stop()  # the writer flushes
    code, out, err = await run_cli("calls", "--database", rig.settings.database_url, "show", sid)
    assert code == 0, err
    assert "context: timeout" in out and "webhook" not in out


async def test_dashboard_call_page(start_rig: StartRig, hooks: HooksReceiver) -> None:
    """`/dashboard/calls/<sid>` shows the story to a signed-in operator only; the dashboard's
    data links the slowest calls there."""
    rig = await start_rig(config=hooks_config(hooks), records=True, admin_token=ADMIN,
                          **HOOK_SETTINGS)  # fmt: skip
    sid = new_sid("CA")
    await rig.place_call(CTX_RELAY, [Listen(), HangUp()], call_sid=sid)
    await hooks.wait_events(1)
    url = f"{rig.base_url}/dashboard/calls/{sid}"
    async with rig.http.get(url) as resp:
        assert resp.status == 401
    bearer = {"Authorization": f"Bearer {ADMIN}"}
    async with rig.http.get(url, headers=bearer) as resp:
        assert resp.status == 200
        page = await resp.text()
    assert f"call {sid}" in page and "plan: mode relay-router" in page
    async with rig.http.get(f"{rig.base_url}/dashboard/calls/nonsense", headers=bearer) as resp:
        assert resp.status == 400
    async with rig.http.get(f"{rig.base_url}/dashboard/data", headers=bearer) as resp:
        assert (await resp.json())["call_link"] == "/dashboard/calls/"
