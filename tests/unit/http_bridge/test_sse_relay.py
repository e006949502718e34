"""relay_stream writes replies that are already there in one write, and never holds one back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from http_bridge import sse
from server.errors import UpstreamError


class Call:
    """A stand-in for a server-streaming call: its replies, and whether it was cancelled."""

    def __init__(self, replies: AsyncIterator[str]) -> None:
        self._replies = replies
        self.cancelled = False

    def __aiter__(self) -> AsyncIterator[str]:
        return self._replies

    async def initial_metadata(self) -> tuple[()]:
        return ()

    def cancel(self) -> bool:
        self.cancelled = True
        return True


def _frame(reply: str) -> bytes:
    return b"data: " + reply.encode() + b"\n\n"


def _error_frame(error: Any, last: str | None) -> bytes:
    return b"data: error after " + str(last).encode() + b"\n\n"


async def _serve(make_call: Any) -> tuple[str, list[bytes], list[Call]]:
    writes: list[bytes] = []
    calls: list[Call] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        call = make_call()
        calls.append(call)
        return await sse.relay_stream(request, call, _frame, _error_frame, "req_1")

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    original = web.StreamResponse.write

    async def counting(self: web.StreamResponse, data: bytes) -> None:
        writes.append(bytes(data))
        await original(self, data)

    original_eof = web.StreamResponse.write_eof

    async def counting_eof(self: web.StreamResponse, data: bytes = b"") -> None:
        if data:  # aiohttp ends every response with a write_eof() of its own
            writes.append(b"<eof>" + bytes(data))
        await original_eof(self, data)

    web.StreamResponse.write = counting  # type: ignore[method-assign]
    web.StreamResponse.write_eof = counting_eof  # type: ignore[method-assign]
    try:
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/") as response:
            body = (await response.read()).decode()
    finally:
        web.StreamResponse.write = original  # type: ignore[method-assign]
        web.StreamResponse.write_eof = original_eof  # type: ignore[method-assign]
        await runner.cleanup()
    return body, writes, calls


async def test_ready_replies_share_a_write_and_a_wait_flushes_them_first() -> None:
    async def replies() -> AsyncIterator[str]:
        for n in range(4):  # all ready at once, as when one upstream segment holds many events
            yield f"r{n}"
        await asyncio.sleep(0.05)
        yield "r4"

    body, writes, _ = await _serve(lambda: Call(replies()))
    assert body == "".join(f"data: r{n}\n\n" for n in range(5)) + "data: [DONE]\n\n"
    # The first reply alone (time to first chunk), r1-r3 together before the wait, then r4 with
    # [DONE] and the end of the body.
    together = b"data: r1\n\ndata: r2\n\ndata: r3\n\n"
    assert writes == [b"data: r0\n\n", together, b"<eof>data: r4\n\ndata: [DONE]\n\n"]


async def test_a_failure_after_ready_replies_writes_them_before_the_error_event() -> None:
    async def replies() -> AsyncIterator[str]:
        yield "r0"
        yield "r1"
        yield "r2"
        raise UpstreamError("cut")

    body, _, _ = await _serve(lambda: Call(replies()))
    assert body == "data: r0\n\ndata: r1\n\ndata: r2\n\ndata: error after r2\n\n"


async def test_a_failure_while_waiting_names_the_last_reply_written() -> None:
    async def replies() -> AsyncIterator[str]:
        yield "r0"
        yield "r1"
        await asyncio.sleep(0.01)
        raise UpstreamError("cut")

    body, writes, _ = await _serve(lambda: Call(replies()))
    assert body == "data: r0\n\ndata: r1\n\ndata: error after r1\n\n"
    assert writes[1:] == [b"data: r1\n\n", b"<eof>data: error after r1\n\n"]


async def test_a_client_that_leaves_unwinds_the_waiting_producer() -> None:
    unwound = asyncio.Event()
    handler_done = asyncio.Event()

    async def replies() -> AsyncIterator[str]:
        try:
            yield "r0"
            yield "r1"
            await asyncio.sleep(30)
            yield "never"
        except (asyncio.CancelledError, GeneratorExit):
            unwound.set()
            raise

    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await sse.relay_stream(request, Call(replies()), _frame, _error_frame, "req_1")
        finally:
            handler_done.set()

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as session:
            response = await session.get(f"http://127.0.0.1:{port}/")
            assert await response.content.readuntil(b"r1\n\n")
            response.close()
        await asyncio.wait_for(unwound.wait(), 5)
        await asyncio.wait_for(handler_done.wait(), 5)
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("count", [1, 2])
async def test_short_streams_end_with_done(count: int) -> None:
    async def replies() -> AsyncIterator[str]:
        for n in range(count):
            yield f"r{n}"

    body, _, _ = await _serve(lambda: Call(replies()))
    assert body == "".join(f"data: r{n}\n\n" for n in range(count)) + "data: [DONE]\n\n"
