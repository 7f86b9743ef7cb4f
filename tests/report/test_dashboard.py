"""`GET /dashboard`: the live report, for the admin token's holder only."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.report.conftest import assert_charts_drawn, place_calls
from tests.rig import REALTIME_A, Rig, StartRig
from voiceagent.report.browser import Page
from voiceagent.sim.script import HangUp, Listen, Pause
from voiceagent.store.live.factory import make_shared_stores
from voiceagent.web.dashboard import COOKIE, DASHBOARD

ADMIN = "dashboard-admin-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {ADMIN}"}


async def _get(rig: Rig, path: str, **kw: Any) -> tuple[int, str, Any]:
    async with rig.http.get(rig.base_url + path, allow_redirects=False, **kw) as resp:
        return resp.status, await resp.text(), resp


async def test_dashboard_is_404_without_an_admin_token(rig: Rig) -> None:
    """With ADMIN_TOKEN unset there is no dashboard at all, even with a bearer header."""
    for path in ("/dashboard", "/dashboard/data"):
        assert (await _get(rig, path, headers=BEARER))[0] == 404
    async with rig.http.post(rig.base_url + "/dashboard/login", data={"token": ""}) as resp:
        assert resp.status == 404


async def test_dashboard_refuses_requests_without_the_token(start_rig: StartRig) -> None:
    """No token, a wrong bearer token, a forged or expired cookie, or a wrong login: 401 and
    no data; the right bearer token gets the page."""
    rig = await start_rig(admin_token=ADMIN)
    wrong = {"Authorization": "Bearer nope"}
    for path in ("/dashboard", "/dashboard/data"):
        for kw in ({}, {"headers": wrong}, {"cookies": {COOKIE: "99999999999.forged"}},
                   {"cookies": {COOKIE: "1.00"}}):  # fmt: skip
            status, body, _ = await _get(rig, path, **kw)
            assert status == 401 and "report-data" not in body and "numbers" not in body
    async with rig.http.post(rig.base_url + "/dashboard/login", data={"token": "nope"},
                             allow_redirects=False) as resp:  # fmt: skip
        assert resp.status == 401 and COOKIE not in resp.cookies
    status, body, _ = await _get(rig, "/dashboard", headers=BEARER)
    assert status == 200 and 'id="report-data"' in body


async def test_login_sets_an_httponly_strict_session_cookie(start_rig: StartRig) -> None:
    """The right token typed into the sign-in form sets an HttpOnly, SameSite=Strict cookie
    for /dashboard (not the token itself) that opens the page and its data."""
    rig = await start_rig(admin_token=ADMIN)
    async with rig.http.post(rig.base_url + "/dashboard/login", data={"token": ADMIN},
                             allow_redirects=False) as resp:  # fmt: skip
        assert resp.status == 303 and resp.headers["Location"] == "/dashboard"
        cookie = resp.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/dashboard"
    assert ADMIN not in cookie.value
    status, _, resp = await _get(rig, "/dashboard/data", cookies={COOKIE: cookie.value})
    assert status == 200 and resp.headers["Cache-Control"] == "no-store"


async def _recorded(rig: Rig, ended: int) -> dict[str, Any]:
    """The dashboard's data once `ended` calls are in the records (the writer is async)."""
    rig.app[DASHBOARD].report_every_s = 0.0
    async with asyncio.timeout(20):
        while True:
            async with rig.http.get(rig.base_url + "/dashboard/data", headers=BEARER) as resp:
                data: dict[str, Any] = await resp.json()
            outcomes = [o for n in data["numbers"] for o in n["outcomes"].values()]
            if sum(o.get("ended: caller_hangup", 0) for o in outcomes) >= ended:
                return data
            await asyncio.sleep(0.2)


async def test_dashboard_in_chromium_signs_in_and_draws_live_data(
    start_rig: StartRig, page: Page, tmp_path: Path
) -> None:
    """In Chromium: the sign-in form, then the report drawn from the server's records without
    console errors, with a call in progress counted as an active realtime call; the page's
    refresh request carries the session cookie, which scripts cannot read."""
    rig = await start_rig(admin_token=ADMIN, records=True)
    finished = await place_calls(rig)
    ongoing = asyncio.create_task(rig.place_call(REALTIME_A, [Listen(), Pause(6000), HangUp()]))
    for _ in range(200):  # until the call is in progress (10 s at most)
        if rig.services.calls.count("realtime-passthrough") == 1:
            break
        await asyncio.sleep(0.05)
    data = await _recorded(rig, len(finished))
    assert data["live"]["active_calls"]["realtime-passthrough"] == 1

    await page.goto(rig.base_url + "/dashboard")
    assert await page.evaluate("document.title") == "voiceagent dashboard: sign in"
    page.errors.clear()  # the 401 of the sign-in page itself
    await page.evaluate(f"document.querySelector('input[name=token]').value = '{ADMIN}'")
    submitted = asyncio.create_task(page.wait_loaded())
    await page.evaluate("document.forms[0].submit()")
    await submitted
    await assert_charts_drawn(page)
    live = await page.evaluate("document.getElementById('live').innerText")
    assert "realtime-passthrough: 1" in live and "Realtime sessions in use: 1" in live
    assert await page.evaluate("fetch('/dashboard/data').then((r) => r.status)") == 200
    assert COOKIE not in await page.evaluate("document.cookie")
    shot = await page.screenshot(tmp_path / "dashboard.png")
    assert shot.stat().st_size > 10_000
    await ongoing


async def test_realtime_sessions_come_from_the_shared_session_budget(start_rig: StartRig) -> None:
    """With a session budget on the app (`services.stores.budget`), the dashboard shows its
    leases (every instance's) and its cap instead of this instance's realtime calls."""
    rig = await start_rig(admin_token=ADMIN)
    stores = make_shared_stores(rig.settings)
    rig.services.stores = stores  # type: ignore[attr-defined]
    try:
        assert await stores.budget.acquire("CA1") and await stores.budget.acquire("CA2")
        async with rig.http.get(rig.base_url + "/dashboard/data", headers=BEARER) as resp:
            sessions = (await resp.json())["live"]["realtime_sessions"]
        assert sessions["in_use"] == 2 and sessions["limit"] == stores.budget.cap
        assert sessions["source"].startswith("session budget")
    finally:
        await stores.close()
