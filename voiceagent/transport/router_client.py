"""The Inworld Router client: one streaming chat-completions POST per agent turn (docs/protocols.md,
Inworld §2).

`stream_chat` yields decoded SSE events until `[DONE]`. Every failure becomes an
`UpstreamError`: an HTTP error status (with the message of either documented body shape),
no first byte within `first_byte_timeout`, a stall of as long between two reads, a connection
that closes before `[DONE]`, or an `error` object inside the stream. Closing the generator
(or cancelling the task that iterates it) aborts the request: the response is released and the
connection closed, which is how a barge-in stops generation upstream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

import aiohttp

from voiceagent.errors import ProtocolError, UpstreamError, UpstreamFailure, failure_for_status
from voiceagent.protocols.inworld_router import (
    ChatRequest,
    RouterChunk,
    RouterDone,
    RouterStreamError,
    SseDecoder,
    dump_request,
    parse_error_body,
    parse_event,
)

_READ_SIZE = 64 * 1024
_BODY_LIMIT = 2000
_DRAIN_S = 0.2


async def stream_chat(
    http: aiohttp.ClientSession,
    url: str,
    api_key: str,
    request: ChatRequest,
    first_byte_timeout: float,
) -> AsyncGenerator[RouterChunk, None]:
    """POST `request` and yield its chunks; raise UpstreamError on any failure (see module)."""
    headers = {
        "Authorization": f"Basic {api_key}",
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
    }
    deadline = asyncio.get_running_loop().time() + first_byte_timeout
    try:
        async with asyncio.timeout_at(deadline):
            response = await http.post(url, data=dump_request(request), headers=headers)
    except TimeoutError as exc:
        raise UpstreamError(UpstreamFailure.TIMEOUT, "no response from the router") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(UpstreamFailure.UNAVAILABLE, f"router unreachable: {exc}") from exc
    try:
        if response.status >= 400:
            await _raise_for_status(response)
        async for chunk in _events(response, first_byte_timeout, deadline):
            yield chunk
    finally:
        # Back to the pool when the body was read to its end; otherwise (abort, failure) the
        # connection is closed, which is what tells the Router to stop generating.
        response.release()


async def _drain(response: aiohttp.ClientResponse) -> None:
    """Read what follows `[DONE]` (normally just the end of the body), briefly, so the
    connection goes back to the pool instead of being closed."""
    try:
        async with asyncio.timeout(_DRAIN_S):
            while await response.content.readany():
                pass
    except (TimeoutError, aiohttp.ClientError):
        pass


async def _raise_for_status(response: aiohttp.ClientResponse) -> None:
    try:
        body = (await response.read()).decode("utf-8", errors="replace")[:_BODY_LIMIT]
    except aiohttp.ClientError:
        body = ""
    status = response.status
    raise UpstreamError(
        failure_for_status(status),
        f"router answered {status}: {parse_error_body(body)}",
        status=status,
        body=body,
    )


async def _events(
    response: aiohttp.ClientResponse, read_timeout: float, first_deadline: float
) -> AsyncIterator[RouterChunk]:
    """The stream's chunks; the first byte is due by `first_deadline`, later ones within
    `read_timeout` of the previous read (a stall mid-stream)."""
    decoder = SseDecoder()
    loop = asyncio.get_running_loop()
    deadline: float | None = first_deadline
    while True:
        try:
            async with asyncio.timeout_at(deadline or loop.time() + read_timeout):
                data = await response.content.readany()
        except TimeoutError as exc:
            what = "no first byte from the router" if deadline else "router stream stalled"
            raise UpstreamError(UpstreamFailure.TIMEOUT, what) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(UpstreamFailure.DROPPED, f"router stream broke: {exc}") from exc
        deadline = None
        payloads = decoder.feed(data) if data else decoder.flush()
        for payload in payloads:
            try:
                event = parse_event(payload)
            except ProtocolError:
                continue  # the reference client skips lines it cannot parse
            if isinstance(event, RouterDone):
                await _drain(response)
                return
            if isinstance(event, RouterStreamError):
                raise UpstreamError(UpstreamFailure.ERROR, event.message, body=event.message)
            yield event
        if not data:
            raise UpstreamError(UpstreamFailure.DROPPED, "router stream closed before [DONE]")
