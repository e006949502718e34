"""Relay a server-streaming call to the client as Server-Sent Events, byte-faithful to OpenAI.

The HTTP status is decided by the first message: a failure before it is an ordinary error response;
a failure after it becomes one final SSE event. A client disconnect cancels the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from aiohttp import web

from http_bridge.call_headers import call_headers
from http_bridge.errors import as_gateway_error, error_response
from server.errors import GatewayError

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
}
DONE_EVENT = b"data: [DONE]\n\n"


async def relay_stream(
    request: web.Request,
    call: Any,
    frame: Callable[[Any], bytes],
    error_frame: Callable[[GatewayError, Any], bytes],
    request_id: str,
    done: bytes | None = DONE_EVENT,
    first_headers: Callable[[Any], dict[str, str]] | None = None,
) -> web.StreamResponse:
    """Write `frame(message)` for each reply of `call`; `done` closes a stream that ended well.

    A failure after the first reply is written as `error_frame(error, last reply written)`: the
    last reply lets a protocol number its error event (the Responses `sequence_number`).
    """
    replies: AsyncIterator[Any] = call.__aiter__()
    try:
        first = await replies.__anext__()
    except StopAsyncIteration:
        first = None
    except (grpc.aio.AioRpcError, GatewayError) as error:
        return error_response(as_gateway_error(error), request_id)
    headers = await call_headers(call) if first is not None else {}
    if first is not None and first_headers is not None:
        headers.update(first_headers(first))
    response = web.StreamResponse(headers={**SSE_HEADERS, **headers, "X-Request-Id": request_id})
    await response.prepare(request)
    last = first
    try:
        if first is not None:
            await response.write(frame(first))
            async for last in replies:
                await response.write(frame(last))
        if done is not None:
            await response.write(done)
    except (grpc.aio.AioRpcError, GatewayError) as error:
        await response.write(error_frame(as_gateway_error(error), last))
    except (asyncio.CancelledError, ConnectionResetError):
        call.cancel()
        raise
    await response.write_eof()
    return response
