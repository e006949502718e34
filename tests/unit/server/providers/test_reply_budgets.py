"""Upstream reply budgets (issue #20, defect 6): a reply read whole, one SSE event, a body sent in pieces.

Real aiohttp servers on 127.0.0.1; every byte goes through a socket.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from server.config import OpenAIProviderConfig
from server.errors import UpstreamError
from server.providers.base import RequestContext
from server.providers.sse_reader import SseParser
from server.providers.transport import Http1Client, ReplyTooLarge
from server.providers.upstream_errors import classify_http_error
from server.providers.upstream_http import UpstreamHttp

pytestmark = pytest.mark.timeout(20)
BIG = 4 << 20
BULK = OpenAIProviderConfig(name="bulk", type="openai", base_url="http://unused")


@asynccontextmanager
async def serving(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> AsyncIterator[str]:
    app = web.Application(client_max_size=64 << 20)
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


class Sender:
    """Replies with `size` bytes, declared (Content-Length) or chunked; notes if all were written."""

    def __init__(self, size: int, *, chunked: bool) -> None:
        self.size = size
        self.chunked = chunked
        self.finished = False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        if not self.chunked:
            response = web.StreamResponse(headers={"Content-Length": str(self.size)})
        else:
            response = web.StreamResponse()
            response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(0, self.size, 65536):
                await response.write(b"x" * 65536)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            return response
        self.finished = True
        return response


@pytest.fixture
async def client() -> AsyncIterator[Http1Client]:
    http = Http1Client(4, 2.0, 2.0)
    yield http
    await http.close()


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_reply_over_its_limit_raises_and_is_not_read_to_its_end(
    client: Http1Client, chunked: bool
) -> None:
    sender = Sender(16 << 20, chunked=chunked)
    async with serving(sender.handle) as url:
        with pytest.raises(ReplyTooLarge) as refused:
            async with client.request("POST", url, {}, b"{}", limit=BIG) as response:
                await response.read()
        assert refused.value.limit == BIG
        await asyncio.sleep(0.2)
        assert not sender.finished  # the connection was dropped, not drained
        assert client.in_use == 0


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_reply_within_its_limit_is_read_whole(client: Http1Client, chunked: bool) -> None:
    async with serving(Sender(BIG, chunked=chunked).handle) as url:
        async with client.request("POST", url, {}, b"{}", limit=BIG) as response:
            assert len(await response.read()) == BIG


async def test_upstream_http_turns_an_oversized_reply_into_a_502_naming_the_provider() -> None:
    http = UpstreamHttp(BULK, classify_http_error)
    async with serving(Sender(16 << 20, chunked=False).handle) as url:
        with pytest.raises(UpstreamError) as refused:
            async with http.request("POST", url, RequestContext(request_id="r"), {}, b"{}", limit=BIG) as r:
                await r.read()
    assert refused.value.kind.http_status == 502
    assert (refused.value.kind.type, refused.value.code) == ("upstream_error", "provider_error")
    assert f"{BIG}-byte limit" in refused.value.message and "'bulk'" in refused.value.message
    await http.close()


async def test_an_oversized_error_body_is_refused_too() -> None:
    async def error(request: web.Request) -> web.Response:
        return web.Response(status=500, body=b"e" * (2 * BIG))

    http = UpstreamHttp(BULK, classify_http_error)
    async with serving(error) as url:
        with pytest.raises(UpstreamError) as refused:
            async with http.request("POST", url, RequestContext(request_id="r"), {}, b"{}", limit=BIG):
                pass
    assert f"{BIG}-byte limit" in refused.value.message
    await http.close()


async def test_a_body_in_pieces_arrives_whole_with_its_length(client: Http1Client) -> None:
    received: list[tuple[str | None, str]] = []

    async def echo(request: web.Request) -> web.Response:
        await asyncio.sleep(0.1)  # the client meanwhile fills the socket and must wait for room
        body = await request.read()
        received.append((request.headers.get("Content-Length"), hashlib.sha256(body).hexdigest()))
        return web.Response(body=b"ok")

    pieces = [b'{"a":"', bytes(range(256)) * (24 << 10), b'","b":"', b"y" * (3 << 20), b'"}']
    expected = hashlib.sha256(b"".join(pieces)).hexdigest()
    async with serving(echo) as url:
        async with client.request("POST", url, {}, list(pieces)) as response:
            assert await response.read() == b"ok"
        # Pooled and reused afterwards, like any request.
        async with client.request("POST", url, {}, b"{}") as response:
            assert await response.read() == b"ok"
    assert received[0] == (str(sum(map(len, pieces))), expected)


def test_one_sse_event_may_not_grow_past_its_limit() -> None:
    parser = SseParser(1000)
    assert parser.feed(b"data: " + b"a" * 900 + b"\n\n") == [(None, b"a" * 900)]
    # One endless line, however it is split.
    parser = SseParser(1000)
    parser.feed(b"data: " + b"b" * 600)
    with pytest.raises(UpstreamError) as refused:
        parser.feed(b"b" * 600)
    assert "1000-byte limit" in refused.value.message
    # Many short lines of one event that never ends.
    parser = SseParser(1000)
    for _ in range(10):
        parser.feed(b"data: " + b"c" * 100 + b"\n")
    with pytest.raises(UpstreamError):
        parser.feed(b"data: " + b"c" * 100 + b"\n")
    # A long stream of small events is fine.
    parser = SseParser(1000)
    for _ in range(1000):
        assert parser.feed(b"data: " + b"d" * 500 + b"\n\n") == [(None, b"d" * 500)]
