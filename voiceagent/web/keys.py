"""Typed keys of the aiohttp application."""

from __future__ import annotations

from aiohttp import web

from voiceagent.outbound.service import Outbound
from voiceagent.protocols.signature import SignatureVerifier
from voiceagent.runtime import Services
from voiceagent.store.records.sink import RecordingSink

SERVICES = web.AppKey("services", Services)
VERIFIER = web.AppKey("verifier", SignatureVerifier)
OUTBOUND = web.AppKey("outbound", Outbound)
RECORDER = web.AppKey("recorder", RecordingSink)  # set only when DATABASE_URL is set
