"""The Inworld Realtime WebSocket client: open one session per call, map failures.

The URL is the configured session endpoint plus a unique ``key`` and ``protocol=realtime``;
auth is ``Authorization: Basic <INWORLD_API_KEY>``, sent as-is (the portal key is already
base64). Every way the upgrade can fail becomes an ``UpstreamError`` with its
``UpstreamFailure``, so the mode can log the reason and apologise to the caller.
"""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
from yarl import URL

from voiceagent.errors import UpstreamError, UpstreamFailure, failure_for_status
from voiceagent.settings import Settings
from voiceagent.transport.channel import WebSocketChannel

MAX_EVENT_BYTES = 16 * 1024 * 1024
"""The largest Inworld event accepted (a long audio delta is well under a MiB)."""
CLOSE_TIMEOUT_S = 1.0
"""How long closing waits for Inworld's close frame (the session must end within a second)."""


def session_key(call_sid: str) -> str:
    """A unique session key that still names the call, for Inworld-side tracing."""
    return f"voiceagent-{call_sid}-{uuid.uuid4().hex[:12]}"


def session_url(base: str, key: str) -> URL:
    """The endpoint with ``key`` and ``protocol=realtime`` added to whatever query it has."""
    return URL(base).update_query(key=key, protocol="realtime")


async def connect_realtime(
    http: aiohttp.ClientSession, settings: Settings, key: str
) -> WebSocketChannel:
    """Open the Realtime session ``key``; UpstreamError (with its kind) when that fails."""
    url = session_url(settings.inworld_realtime_url, key)
    headers = {"Authorization": f"Basic {settings.inworld_api_key}"}
    timeout = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=CLOSE_TIMEOUT_S)
    try:
        async with asyncio.timeout(settings.upstream_connect_timeout):
            ws = await http.ws_connect(
                url,
                headers=headers,
                timeout=timeout,
                autoping=True,
                heartbeat=settings.heartbeat_seconds,
                max_msg_size=MAX_EVENT_BYTES,
            )
    except aiohttp.WSServerHandshakeError as exc:
        kind = failure_for_status(exc.status)
        raise UpstreamError(kind, f"upgrade refused: HTTP {exc.status}", status=exc.status) from exc
    except TimeoutError as exc:
        raise UpstreamError(
            UpstreamFailure.TIMEOUT, f"no upgrade in {settings.upstream_connect_timeout}s"
        ) from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise UpstreamError(UpstreamFailure.UNAVAILABLE, f"cannot connect: {exc}") from exc
    return WebSocketChannel(ws)
