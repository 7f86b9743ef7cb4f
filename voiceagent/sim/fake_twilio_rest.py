"""A fake Twilio REST API (2010-04-01) on a real aiohttp server, for tests and ``simulate``.

It answers what voiceagent asks of Twilio's REST API, with the real JSON shapes, status codes
and Twilio error codes:

- ``POST/GET /2010-04-01/Accounts/{AccountSid}/Calls.json``: create (``To``, ``From``, ``Url``
  or ``Twiml``, ``StatusCallback``, ``StatusCallbackEvent``, ``MachineDetection``,
  ``AsyncAmd``, ``AsyncAmdStatusCallback``, ...) and list;
- ``GET/POST .../Calls/{Sid}.json``: fetch and update (``Status=completed|canceled``,
  ``Twiml``, ``Url``);
- ``POST .../Calls/{Sid}/Recordings.json``: start a recording; its ``RecordingStatusCallback``
  is posted (signed) when the recording ends with the call;
- ``GET .../IncomingPhoneNumbers.json`` and ``POST .../IncomingPhoneNumbers/{Sid}.json``.

Requests authenticate with HTTP Basic: the account SID and auth token, or an API key SID and
its secret (401 with Twilio's 20003 otherwise). Errors: 21201/21213 (no To/From), 21211/21212
(invalid To/From), 21210 (From not a number of the account), 21205 (no Url/Twiml), 20404
(unknown resource), 21220 (call in the wrong state). ``received`` keeps every request.

Placing the callee is not this module's job: ``player`` (when set; ``voiceagent.sim.callee``)
plays each created call out and hears of its REST updates; without one a created call stays
queued until a test moves it with ``set_status`` / ``end_call``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from voiceagent.sim.fake_twilio_callbacks import Callbacks, identity
from voiceagent.sim.fake_twilio_resources import (
    API,
    CALL_DONE,
    FakeCall,
    FakeNumber,
    FakeRecording,
    RestError,
    RestRequest,
    basic_user,
    not_found,
    now,
    page,
)
from voiceagent.sim.fake_twilio_rest_calls import call_from_form, update_call
from voiceagent.sim.webhooks import new_sid


class CallPlayer(Protocol):
    """Plays the far end of the calls the fake creates (``voiceagent.sim.callee``)."""

    async def play(self, call: FakeCall) -> None:
        """Ring, answer (or not), fetch and run the call's TwiML until it ends."""
        ...

    def updated(self, call: FakeCall) -> None:
        """The call was redirected (new ``Url``/``Twiml``) or ended through the REST API."""
        ...


PARAMS = web.RequestKey("params", dict[str, list[str]])


@dataclass
class FakeTwilioRest:
    """The fake API; ``async with`` starts it on 127.0.0.1 (``url`` is its base URL)."""

    account_sid: str = field(default_factory=lambda: new_sid("AC"))
    auth_token: str = "fake-twilio-auth-token"
    numbers: Iterable[str] = ()
    api_keys: dict[str, str] = field(default_factory=dict)  # key SID -> secret
    url_map: Callable[[str], str] = identity
    player: CallPlayer | None = None
    url: str = ""
    received: list[RestRequest] = field(default_factory=list)
    calls: dict[str, FakeCall] = field(default_factory=dict)
    recordings: dict[str, FakeRecording] = field(default_factory=dict)
    owned: dict[str, FakeNumber] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _http: aiohttp.ClientSession | None = None
    _callbacks: Callbacks | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        for number in self.numbers:
            self.add_number(number)

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._http = aiohttp.ClientSession()
        self._callbacks = Callbacks(self.auth_token, self._http, self.url_map)
        app = web.Application(middlewares=[self._guard])
        acct = API + "/Accounts/{account}"
        app.router.add_route("*", acct + "/Calls.json", self._calls)
        app.router.add_route("*", acct + "/Calls/{sid}.json", self._call)
        app.router.add_post(acct + "/Calls/{sid}/Recordings.json", self._start_recording)
        app.router.add_route("*", acct + "/Calls/{sid}/Recordings/{rec}.json", self._recording)
        app.router.add_get(acct + "/IncomingPhoneNumbers.json", self._list_numbers)
        app.router.add_route("*", acct + "/IncomingPhoneNumbers/{sid}.json", self._number)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound = self._runner.addresses[0]
        self.url = f"http://{host}:{bound[1]}"
        return self.url

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()

    async def __aenter__(self) -> FakeTwilioRest:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def callbacks(self) -> Callbacks:
        """The signed callbacks sent so far (``.sent``) and a way to wait for one."""
        if self._callbacks is None:
            raise RuntimeError("the fake Twilio REST API is not started")
        return self._callbacks

    def spawn(self, work: Awaitable[None]) -> asyncio.Task[None]:
        """Run ``work`` as a task the fake holds (cancelled at close)."""

        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- what tests and the callee drive -------------------------------------------------------
    def add_number(self, number: str, voice_url: str = "") -> FakeNumber:
        """Give the account a phone number (``voice_url`` presets where its calls go)."""
        entry = FakeNumber(new_sid("PN"), self.account_sid, number, voice_url=voice_url)
        self.owned[entry.sid] = entry
        return entry

    def add_call(self, sid: str, from_: str, to: str, *, direction: str = "inbound",
                 status: str = "in-progress") -> FakeCall:  # fmt: skip
        """Announce a call the simulated Twilio placed itself (an inbound call), so that REST
        requests about it (recordings, hang-up) find it."""
        call = FakeCall(sid, self.account_sid, from_, to, direction, status=status)
        call.start_time = now() if status == "in-progress" else None
        self.calls[sid] = call
        return call

    async def set_status(self, call: FakeCall, status: str, event: str) -> None:
        """Move ``call`` to ``status`` and send the status callback for ``event`` if asked."""
        call.status, call.updated = status, now()
        if status == "in-progress" and call.start_time is None:
            call.start_time = call.updated
        if status in CALL_DONE:
            call.end_time = call.updated
            if call.start_time is None:
                call.start_time = call.end_time
        await self.callbacks.status(call, event)

    async def end_call(self, sid: str, status: str = "completed") -> None:
        """End a call: its recordings complete (their callbacks are posted), then the call's
        own ``completed`` status callback."""
        call = self.calls[sid]
        if call.status in CALL_DONE:
            return
        for rec in [r for r in self.recordings.values() if r.call_sid == sid]:
            await self._stop_recording(rec)
        await self.set_status(call, status, "completed")

    def media_url(self, rec: FakeRecording) -> str:
        """The recording's media URL as Twilio reports it (this fake's base URL)."""
        return self.url + rec.media_path()

    # -- HTTP ----------------------------------------------------------------------------------
    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        form = await request.post() if request.method == "POST" else request.query
        params: dict[str, list[str]] = {}
        for key, value in form.items():
            params.setdefault(key, []).append(str(value))
        user = self._authenticate(request)
        at = asyncio.get_running_loop().time()
        self.received.append(RestRequest(request.method, request.path, params, user or "", at))
        request[PARAMS] = params
        try:
            if user is None or request.match_info.get("account") != self.account_sid:
                raise RestError(401, 20003, "Authenticate")
            response: web.StreamResponse = await handler(request)
            return response
        except RestError as err:
            headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if err.code == 20003 else {}
            return web.json_response(err.body(), status=err.status, headers=headers)

    def _authenticate(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        return basic_user(header, self.account_sid, self.auth_token, self.api_keys)

    def _params(self, request: web.Request) -> dict[str, list[str]]:
        params: dict[str, list[str]] = request.get(PARAMS, {})
        return params

    async def _calls(self, request: web.Request) -> web.Response:
        if request.method == "GET":
            return _list("calls", [c.to_json() for c in self.calls.values()], request)
        if request.method != "POST":
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST"])
        call = call_from_form(self._params(request), self.account_sid, self.owned.values())
        self.calls[call.sid] = call
        if self.player is not None:
            self.spawn(self.player.play(call))
        return web.json_response(call.to_json(), status=201)

    def _find_call(self, request: web.Request) -> FakeCall:
        call = self.calls.get(request.match_info["sid"])
        if call is None:
            raise not_found(request.path)
        return call

    async def _call(self, request: web.Request) -> web.Response:
        call = self._find_call(request)
        if request.method == "POST":
            redirects = len(call.redirects)
            ending = update_call(call, self._params(request))
            if ending is not None:
                await self.end_call(call.sid, ending)
            if self.player is not None and (ending or len(call.redirects) > redirects):
                self.player.updated(call)
        elif request.method == "DELETE":
            self.calls.pop(call.sid)
            return web.Response(status=204)
        return web.json_response(call.to_json())

    async def _start_recording(self, request: web.Request) -> web.Response:
        call = self._find_call(request)
        if call.status != "in-progress":
            raise RestError(400, 21220, "Requested resource is not eligible for recording")
        params = self._params(request)

        def get(name: str, default: str = "") -> str:
            return (params.get(name) or [default])[0]

        events = tuple(" ".join(params.get("RecordingStatusCallbackEvent", [])).split())
        rec = FakeRecording(
            new_sid("RE"), self.account_sid, call.sid,
            channels=2 if get("RecordingChannels") == "dual" else 1,
            track=get("RecordingTrack", "both"),
            status_callback=get("RecordingStatusCallback"),
            status_callback_method=get("RecordingStatusCallbackMethod", "POST"),
            status_callback_events=events or ("completed",),
        )  # fmt: skip
        self.recordings[rec.sid] = rec
        self.spawn(self.callbacks.recording(rec, "in-progress", self.media_url(rec)))
        return web.json_response(rec.to_json(), status=201)

    async def _recording(self, request: web.Request) -> web.Response:
        rec = self.recordings.get(request.match_info["rec"])
        if rec is None or rec.call_sid != request.match_info["sid"]:
            raise not_found(request.path)
        if request.method == "POST" and self._params(request).get("Status") == ["stopped"]:
            await self._stop_recording(rec)
        return web.json_response(rec.to_json())

    async def _stop_recording(self, rec: FakeRecording) -> None:
        if rec.status != "in-progress":
            return
        rec.status, rec.end_time = "completed", now()
        self.spawn(self.callbacks.recording(rec, "completed", self.media_url(rec)))

    async def _list_numbers(self, request: web.Request) -> web.Response:
        wanted = request.query.get("PhoneNumber")
        found = [n.to_json() for n in self.owned.values() if wanted in (None, n.phone_number)]
        return _list("incoming_phone_numbers", found, request)

    async def _number(self, request: web.Request) -> web.Response:
        number = self.owned.get(request.match_info["sid"])
        if number is None:
            raise not_found(request.path)
        if request.method == "POST":
            fields = {"VoiceUrl": "voice_url", "VoiceMethod": "voice_method",
                      "VoiceFallbackUrl": "voice_fallback_url",
                      "VoiceFallbackMethod": "voice_fallback_method",
                      "StatusCallback": "status_callback",
                      "StatusCallbackMethod": "status_callback_method"}  # fmt: skip
            for name, values in self._params(request).items():
                if name in fields:
                    setattr(number, fields[name], values[0])
            number.updated = now()
        return web.json_response(number.to_json())


def _list(key: str, items: list[dict[str, Any]], request: web.Request) -> web.Response:
    try:
        size = max(1, min(1000, int(request.query.get("PageSize", "50"))))
    except ValueError:
        raise RestError(400, 20001, "Invalid PageSize") from None
    return web.json_response(page(key, items, request.path, size))
