"""Typed keys of the aiohttp application."""

from __future__ import annotations

from aiohttp import web

from voiceagent.outbound.service import Outbound
from voiceagent.protocols.signature import SignatureVerifier
from voiceagent.runtime import Services

SERVICES = web.AppKey("services", Services)
VERIFIER = web.AppKey("verifier", SignatureVerifier)
OUTBOUND = web.AppKey("outbound", Outbound)
RECORDS = "records"  # Services.extras: the app's RecordingSink, or None without a database
