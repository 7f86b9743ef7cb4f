"""The far end of an outbound call, played by the fake Twilio: a person, an answering machine,
nobody (no-answer), a busy line or a failed call.

For each call the fake REST API creates (``FakeTwilioRest.player``), ``Callees`` does what
Twilio and the callee would: status callbacks (initiated, ringing, answered, completed, each
when asked for), the async AMD verdict (``human`` once the person said hello; an answering
machine's ``machine_end_beep`` after its greeting and beep), and the call's TwiML: the signed
``/voice`` request for an outbound call (``Direction=outbound-api``), then its verbs in order
(``<Pause>``, ``<Say>``, ``<Redirect>``, ``<Hangup>``, and ``<Connect>``: a Media Streams or
ConversationRelay leg through the simulated callers, with the callee's script). A REST update
(new ``Url`` or ``Twiml``, or ``Status=completed``) interrupts the verb running, as it does on
Twilio. Times are ``time.monotonic()`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from voiceagent.protocols.signature import compute_signature
from voiceagent.sim.caller import place_call
from voiceagent.sim.fake_twilio_callbacks import call_params
from voiceagent.sim.fake_twilio_resources import CALL_DONE, FakeCall
from voiceagent.sim.fake_twilio_rest import FakeTwilioRest
from voiceagent.sim.script import CallRecord, HangUp, Listen, Pause, Say, Script
from voiceagent.sim.webhooks import SimTarget

CalleeKind = Literal["person", "machine", "no-answer", "busy", "failed"]
PERSON_SCRIPT: Script = (Listen(), Say("Yes, tomorrow works for me."), Listen(), HangUp())
MACHINE_SCRIPT: Script = (Listen(timeout_ms=60_000), Pause(ms=60_000))


@dataclass(frozen=True, slots=True)
class Callee:
    """Who answers a number, and how (durations in seconds, scaled for tests)."""

    kind: CalleeKind = "person"
    script: Script = PERSON_SCRIPT  # what a person does once the agent is on the line
    hello_s: float = 0.4  # a person's "Hello?" before AMD hears a human
    ring_s: float = 0.2
    greeting_s: float = 1.0  # an answering machine's greeting, then the beep
    no_answer_s: float = 0.5  # how long an unanswered call rings before no-answer


@dataclass
class CalleeRecord:
    """What happened on one outbound call, from the callee's side."""

    call_sid: str
    to: str
    kind: CalleeKind
    answered_at: float | None = None
    beep_at: float | None = None
    amd_posted: str | None = None
    twiml: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)  # <Say> texts played to the callee
    legs: list[tuple[float, CallRecord]] = field(default_factory=list)  # (started, record)
    leg_seconds: float = 0.0  # how long the call's legs were connected, in all
    status: str = ""
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def heard_ms(self) -> float:
        """Agent audio the callee heard over all the call's legs."""
        return sum(record.heard_ms for _, record in self.legs)


class Callees:
    """Plays every call of ``fake`` (install with ``fake.player = callees``)."""

    def __init__(
        self, fake: FakeTwilioRest, target: SimTarget, http: aiohttp.ClientSession,
        directory: dict[str, Callee] | None = None, default: Callee | None = None,
        **caller_options: Any,
    ) -> None:  # fmt: skip
        self.fake, self.target, self.http = fake, target, http
        self.directory = directory if directory is not None else {}
        self.default = default or Callee()
        self.caller_options: dict[str, Any] = caller_options  # e.g. relay ``speed`` / ``quiet_s``
        self.records: dict[str, CalleeRecord] = {}
        self._interrupts: dict[str, asyncio.Event] = {}
        self._news = asyncio.Event()

    async def wait(self, call_sid: str, within: float = 20.0) -> CalleeRecord:
        """The record of a call once it ended."""
        async with asyncio.timeout(within):
            while call_sid not in self.records:
                self._news.clear()
                await self._news.wait()
            record = self.records[call_sid]
            await record.done.wait()
            return record

    def updated(self, call: FakeCall) -> None:
        event = self._interrupts.get(call.sid)
        if event is not None:
            event.set()

    async def play(self, call: FakeCall) -> None:
        callee = self.directory.get(call.to, self.default)
        record = self.records[call.sid] = CalleeRecord(call.sid, call.to, callee.kind)
        self._interrupts[call.sid] = asyncio.Event()
        self._news.set()
        try:
            await self._ring_and_answer(call, callee, record)
        finally:
            if call.status not in CALL_DONE:
                await self.fake.end_call(call.sid, "completed")
            record.status = call.status
            record.done.set()
            self._interrupts.pop(call.sid, None)

    async def _ring_and_answer(self, call: FakeCall, callee: Callee, record: CalleeRecord) -> None:
        await self.fake.set_status(call, "initiated", "initiated")
        await self.fake.set_status(call, "ringing", "ringing")
        await asyncio.sleep(callee.ring_s)
        if callee.kind in ("no-answer", "busy", "failed"):
            if callee.kind == "no-answer":
                await asyncio.sleep(callee.no_answer_s)
            await self.fake.end_call(call.sid, callee.kind)
            return
        await self.fake.set_status(call, "in-progress", "answered")
        record.answered_at = time.monotonic()
        amd = self.fake.spawn(self._amd(call, callee, record)) if call.async_amd else None
        try:
            twiml = await self._fetch(call, call.url, call.method) if call.url else call.twiml
            await self._run(call, callee, record, twiml)
        finally:
            if amd is not None:
                amd.cancel()

    async def _amd(self, call: FakeCall, callee: Callee, record: CalleeRecord) -> None:
        """Twilio's async AMD: a person is heard after their hello; a machine's verdict
        (DetectMessageEnd) comes once its greeting ended with the beep."""
        started = time.monotonic()
        if callee.kind == "person":
            await asyncio.sleep(callee.hello_s + 0.3)
            call.answered_by = "human"
        else:
            await asyncio.sleep(callee.greeting_s)
            record.beep_at = time.monotonic()
            await asyncio.sleep(0.1)
            call.answered_by = "machine_end_beep"
        record.amd_posted = call.answered_by
        await self.fake.callbacks.amd(call, round((time.monotonic() - started) * 1000))

    async def _fetch(self, call: FakeCall, url: str, method: str = "POST") -> str:
        """Request TwiML as Twilio does for an outbound call: signed, with the call's params."""
        form = call_params(call)
        if call.answered_by and not call.async_amd:
            form["AnsweredBy"] = call.answered_by
        headers = {"X-Twilio-Signature": compute_signature(self.fake.auth_token, url, form)}
        async with self.http.post(self.target.local(url), data=form, headers=headers) as resp:
            body = await resp.text()
            return body if resp.status == 200 else "<Response><Hangup/></Response>"

    async def _run(self, call: FakeCall, callee: Callee, record: CalleeRecord, twiml: str) -> None:
        """Execute TwiML documents until the call ends; a REST update replaces the document."""
        interrupt = self._interrupts[call.sid]
        while twiml and call.status not in CALL_DONE:
            record.twiml.append(twiml)
            interrupt.clear()
            work = asyncio.ensure_future(self._document(call, callee, record, twiml))
            stop = asyncio.ensure_future(interrupt.wait())
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if not work.done():  # redirected or hung up through the REST API
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
                twiml = await self._redirected(call)
            else:
                twiml = work.result()

    async def _redirected(self, call: FakeCall) -> str:
        if call.status in CALL_DONE or not call.redirects:
            return ""
        kind, _, value = call.redirects[-1].partition(":")
        return await self._fetch(call, value, call.method) if kind == "url" else value

    async def _document(
        self, call: FakeCall, callee: Callee, record: CalleeRecord, twiml: str
    ) -> str:
        """Run one TwiML document; the next document to run ("" when the call ends)."""
        try:
            root = ET.fromstring(twiml)
        except ET.ParseError:
            return ""
        for verb in root:
            if verb.tag == "Pause":
                await asyncio.sleep(float(verb.get("length", "1")))
            elif verb.tag == "Say":
                record.said.append(verb.text or "")
                await asyncio.sleep(len(verb.text or "") / 15.0)
            elif verb.tag == "Redirect":
                url, method = (verb.text or "").strip(), verb.get("method", "POST")
                return await self._fetch(call, url, method)
            elif verb.tag == "Hangup":
                return ""
            elif verb.tag == "Connect":
                return await self._connect(call, callee, record, twiml)
        return ""

    async def _connect(
        self, call: FakeCall, callee: Callee, record: CalleeRecord, twiml: str
    ) -> str:
        """A stream leg through the simulated caller, with the callee's script; then the
        TwiML its ``<Connect action>`` answered (a reconnect the caller followed itself)."""
        script = callee.script if callee.kind == "person" else MACHINE_SCRIPT
        started = time.monotonic()
        leg: CallRecord = await place_call(
            self.target, call.to, script, from_=call.from_, call_sid=call.sid, http=self.http,
            twiml=twiml, direction=call.direction, **self.caller_options,
        )  # fmt: skip
        record.legs.append((started, leg))
        record.leg_seconds += time.monotonic() - started
        after = leg.action_twiml or ""
        return "" if "<Connect" in after else after
