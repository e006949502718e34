"""Relay a server-streaming call to the client as Server-Sent Events, byte-faithful to OpenAI.

The HTTP status is decided by the first message: a failure before it is an ordinary error response;
a failure after it becomes one final SSE event. A client disconnect cancels the call.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncIterator, Callable, Generator
from contextlib import suppress
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


class _EventStream(web.StreamResponse):
    # The status line and headers go out with the first event, which follows prepare() at once:
    # one write and one segment instead of two (aiohttp >= 3.12 reads this; older ones ignore it).
    _send_headers_immediately = False


async def relay_stream(
    request: web.Request,
    call: Any,
    frame: Callable[[Any], bytes],
    error_frame: Callable[[GatewayError, Any], bytes],
    request_id: str,
    done: bytes | None = DONE_EVENT,
    first_headers: Callable[[Any], dict[str, str]] | None = None,
    refuse: Callable[[GatewayError, str], web.Response] = error_response,
) -> web.StreamResponse:
    """Write `frame(message)` for each reply of `call`; `done` closes a stream that ended well.

    A failure before the first reply is answered with `refuse(error, request_id)`, the protocol's
    error response (OpenAI's by default). A failure after it is written as `error_frame(error, last
    reply written)`: the last reply lets a protocol number its error event (the Responses
    `sequence_number`).
    """
    replies: AsyncIterator[Any] = call.__aiter__()
    try:
        first = await replies.__anext__()
    except StopAsyncIteration:
        first = None
    except (grpc.aio.AioRpcError, GatewayError) as error:
        return refuse(as_gateway_error(error), request_id)
    headers = await call_headers(call) if first is not None else {}
    if first is not None and first_headers is not None:
        headers.update(first_headers(first))
    response = _EventStream(headers={**SSE_HEADERS, **headers, "X-Request-Id": request_id})
    await response.prepare(request)
    last = first
    # What is left when the replies end (the last batch, then [DONE] or the error event) goes out
    # with the end of the chunked body, in one write.
    tail = b""
    try:
        if first is not None:
            await response.write(frame(first))
            # Replies that are already there (an upstream segment often holds many events) go out in
            # one write; the batch is written the moment the next reply would have to be waited for.
            pending: list[bytes] = []
            while True:
                step = replies.__anext__().__await__()
                try:
                    signal = step.send(None)
                except StopIteration as ready:
                    last = ready.value
                    pending.append(frame(last))
                    continue
                except StopAsyncIteration:
                    break
                except BaseException:
                    tail = b"".join(pending)
                    raise
                if pending:
                    try:
                        await response.write(b"".join(pending))
                    except BaseException:
                        await _abandon(step, signal)
                        raise
                    pending = []
                try:
                    last = await _resume(step, signal)
                except StopAsyncIteration:
                    break
                pending.append(frame(last))
            tail = b"".join(pending)
        if done is not None:
            tail += done
    except (grpc.aio.AioRpcError, GatewayError) as error:
        tail += error_frame(as_gateway_error(error), last)
    except asyncio.CancelledError:
        call.cancel()
        raise
    except ConnectionResetError:
        # The client went away between two writes: stop the call; nothing is left to tell anyone.
        call.cancel()
        return response
    await response.write_eof(tail)
    return response


@types.coroutine
def _resume(step: Any, signal: Any) -> Generator[Any, Any, Any]:
    """Go on awaiting `step`, a coroutine already started by hand that yielded `signal` to the loop."""
    while True:
        try:
            yield signal
        except BaseException as error:  # a cancellation reaches the reply producer, as an await would
            try:
                signal = step.throw(error)
            except StopIteration as stopped:
                return stopped.value
            continue
        return (yield from step)


async def _abandon(step: Any, signal: Any) -> None:
    """The client is gone while `step` waits for the next reply: cancel that wait and let it unwind."""
    try:
        signal = step.throw(asyncio.CancelledError())
    except BaseException:  # noqa: BLE001 - the producer ended, as it should
        return
    with suppress(BaseException):
        await _resume(step, signal)
