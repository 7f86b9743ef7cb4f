"""The Inworld Router client: one streaming chat-completions POST per agent turn (docs/protocols.md,
Inworld §2).

`stream_chat` yields decoded SSE events until `[DONE]`. Every failure becomes an
`UpstreamError`: an HTTP error status (with the message of either documented body shape, read
for at most `first_byte_timeout` and ERROR_BODY_LIMIT bytes), no first event within
`first_byte_timeout`, a stall of as long between two events (comments such as `: keepalive`
are no progress), a reply still open at its total deadline (`reply_timeout`), an SSE line over
MAX_SSE_LINE bytes, a connection that closes before `[DONE]`, or an `error` object inside the
stream. Closing the generator
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
    SseLineTooLong,
    dump_request,
    parse_error_body,
    parse_event,
)

_BODY_LIMIT = 2000
_DRAIN_S = 0.2
ERROR_BODY_LIMIT = 64 * 1024
"""Bytes of an error response read at most (its message is cut to 2,000 characters)."""
REPLY_TIMEOUT_S = 60.0
"""The default total deadline of one reply (ROUTER_REPLY_TIMEOUT)."""


async def stream_chat(
    http: aiohttp.ClientSession,
    url: str,
    api_key: str,
    request: ChatRequest,
    first_byte_timeout: float,
    reply_timeout: float = REPLY_TIMEOUT_S,
) -> AsyncGenerator[RouterChunk, None]:
    """POST `request` and yield its chunks; raise UpstreamError on any failure (see module)."""
    headers = {
        "Authorization": f"Basic {api_key}",
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
    }
    loop = asyncio.get_running_loop()
    deadline = loop.time() + first_byte_timeout
    reply_deadline = loop.time() + max(reply_timeout, first_byte_timeout)
    try:
        async with asyncio.timeout_at(deadline):
            response = await http.post(url, data=dump_request(request), headers=headers)
    except TimeoutError as exc:
        raise UpstreamError(UpstreamFailure.TIMEOUT, "no response from the router") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(UpstreamFailure.UNAVAILABLE, f"router unreachable: {exc}") from exc
    try:
        if response.status >= 400:
            await _raise_for_status(response, loop.time() + first_byte_timeout)
        async for chunk in _events(response, first_byte_timeout, deadline, reply_deadline):
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


async def _raise_for_status(response: aiohttp.ClientResponse, deadline: float) -> None:
    """Raise the error an error status means, with what of its body arrived by `deadline`
    (at most ERROR_BODY_LIMIT bytes): a body that never ends cannot hold the turn."""
    body = bytearray()
    try:
        async with asyncio.timeout_at(deadline):
            while len(body) < ERROR_BODY_LIMIT:
                data = await response.content.read(ERROR_BODY_LIMIT - len(body))
                if not data:
                    break
                body += data
    except (TimeoutError, aiohttp.ClientError):
        pass
    text = body.decode("utf-8", errors="replace")[:_BODY_LIMIT]
    status = response.status
    raise UpstreamError(
        failure_for_status(status),
        f"router answered {status}: {parse_error_body(text)}",
        status=status,
        body=text,
    )


async def _events(
    response: aiohttp.ClientResponse,
    read_timeout: float,
    first_deadline: float,
    reply_deadline: float,
) -> AsyncIterator[RouterChunk]:
    """The stream's chunks; the first event is due by `first_deadline`, later ones within
    `read_timeout` of the previous one (bytes that complete no event, such as `: keepalive`
    comments, are no progress), and the whole reply by `reply_deadline`."""
    decoder = SseDecoder()
    loop = asyncio.get_running_loop()
    due, first = first_deadline, True
    while True:
        try:
            async with asyncio.timeout_at(min(due, reply_deadline)):
                data = await response.content.readany()
        except TimeoutError as exc:
            raise UpstreamError(
                UpstreamFailure.TIMEOUT, _late(loop, first, reply_deadline)
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(UpstreamFailure.DROPPED, f"router stream broke: {exc}") from exc
        try:
            payloads = decoder.feed(data) if data else decoder.flush()
        except SseLineTooLong as exc:
            raise UpstreamError(UpstreamFailure.ERROR, str(exc)) from exc
        if payloads:
            due, first = loop.time() + read_timeout, False
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


def _late(loop: asyncio.AbstractEventLoop, first: bool, reply_deadline: float) -> str:
    if loop.time() >= reply_deadline:
        return "router reply took longer than its deadline"
    return "no first event from the router" if first else "router stream stalled"
