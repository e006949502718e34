"""Http1Client against real servers on 127.0.0.1: no mocks, every byte goes through a socket.

Covered:
- the request on the wire: method, path, query (from the URL and from `params`), Host with port, the
  caller's headers, exact body bytes with Content-Length (and none for a bodiless GET), no
  Accept-Encoding; the reply's status, case-insensitive repeated headers and body; bad URLs;
- keep-alive pooling: sequential calls share one connection, concurrent calls stay within `limit`,
  a reply left early has its end drained in the background and its connection pooled (not when too
  much is left, when its end never comes, or when the call failed), a reply marked
  `Connection: close` is not pooled, an idle connection the server closed is replaced (and one it
  drops unanswered as it is reused has its request sent again, once, on a new one), the limit is
  shared across origins, callers queue for a free connection (and a queued caller cancelled just as
  it is woken hands its turn on);
- bodies: Content-Length, chunked (streamed piece by piece, re-chunked by iter_chunked), ending at
  close, empty (204 and Content-Length: 0), a large body read slowly (reading paused past HIGH_WATER);
- errors: refused connection, server hanging up before or during a reply, a cut chunked body, an
  invalid reply, a header with a line break (refused before anything is sent);
- timeouts: read timeout, per-request deadline, a stalled body, a TLS handshake that never ends
  (connect timeout), a deadline while queued for the limit; a timed-out connection is never reused;
- TLS: a self-signed certificate is rejected, a trusted one works;
- close(): idle connections closed, later requests refused, calls in flight and queued.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from server.providers.transport import (
    ClientClosed,
    ConnectError,
    InvalidURL,
    ReplyError,
    ServerDisconnected,
    TransportError,
    http1,
)
from server.providers.transport.connection import HIGH_WATER
from server.providers.transport.http1 import DRAIN_BYTES, DRAIN_SECONDS, Http1Client

pytestmark = pytest.mark.timeout(10)

ClientFactory = Callable[..., Http1Client]
RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Spawn = Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]]

OK_REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


# -- helpers -------------------------------------------------------------------------------------


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """Builds clients (limit 8, 1 s timeouts unless told) and closes them all at the end."""
    clients: list[Http1Client] = []

    def make(
        limit: int = 8, connect_timeout: float | None = 1.0, read_timeout: float | None = 1.0
    ) -> Http1Client:
        client = Http1Client(limit, connect_timeout, read_timeout)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def spawn() -> AsyncIterator[Spawn]:
    """Starts background tasks and, at the end, cancels and awaits those a failed test left behind
    (a finished task nobody awaited must not be garbage-collected while pytest reports the failure)."""
    tasks: list[asyncio.Task[Any]] = []

    def start(coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine)
        tasks.append(task)
        return task

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """An aiohttp app on 127.0.0.1 and a free port; yields its base URL."""
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def app_with(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.Application:
    app = web.Application(client_max_size=16 << 20)
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


def peer_port(request: web.Request) -> int:
    assert request.transport is not None
    return int(request.transport.get_extra_info("peername")[1])


class PortRecorder:
    """An aiohttp upstream answering `ok` that notes the client port of every request it serves."""

    def __init__(self) -> None:
        self.ports: list[int] = []

    @property
    def connections(self) -> int:
        return len(set(self.ports))

    async def handle(self, request: web.Request) -> web.Response:
        self.ports.append(peer_port(request))
        await request.read()
        return web.Response(body=b"ok")


class RawServer:
    """An asyncio.start_server upstream with byte-exact control; counts the connections it accepted
    and those whose handler has ended; closes everything left open on exit."""

    def __init__(self, handler: RawHandler, tls: ssl.SSLContext | None = None) -> None:
        self._handler = handler
        self._tls = tls
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.accepted = 0
        self.ended = 0
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client hung up, or the server is shutting down
        finally:
            self.ended += 1
            writer.close()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._on_connection, "127.0.0.1", 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()  # a handler waiting on reader.read() sees EOF and ends
        pending = [task for task in self._tasks if not task.done()]
        if pending:
            _, stuck = await asyncio.wait(pending, timeout=0.2)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        await asyncio.wait_for(self._server.wait_closed(), 1)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request (head and Content-Length body) as sent; IncompleteReadError at EOF."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + (await reader.readexactly(length) if length else b"")


def answer_each_request(reply: bytes, seen: list[bytes] | None = None) -> RawHandler:
    """A keep-alive raw handler sending `reply` to every request until the client hangs up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await read_request(reader)
            if seen is not None:
                seen.append(request)
            writer.write(reply)
            await writer.drain()

    return handle


async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # until the client hangs up


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def eventually(condition: Callable[[], bool], timeout: float = 0.5) -> bool:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(0.005)
    return True


async def get_body(client: Http1Client, url: str, deadline: float | None = None) -> tuple[int, bytes]:
    async with client.request("GET", url, {}, deadline=deadline) as response:
        return response.status, await response.read()


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the request and the reply -------------------------------------------------------------------


async def test_post_sends_method_path_query_host_headers_and_exact_body(make_client: ClientFactory) -> None:
    seen: dict[str, Any] = {}

    async def handle(request: web.Request) -> web.Response:
        seen.update(
            method=request.method,
            raw_path=request.raw_path,
            headers=dict(request.headers),
            body=await request.read(),
        )
        return web.Response(
            status=201, body=b'{"ok":true}', content_type="application/json", headers={"X-Request-Id": "r-1"}
        )

    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "héllo"}]}).encode()
    sent_headers = {"Authorization": "Bearer sk-test", "Content-Type": "application/json", "X-Trace": "t-9"}
    client = make_client()
    async with serving(app_with(handle)) as url:
        port = url.rsplit(":", 1)[1]
        async with client.request(
            "POST", f"{url}/v1/chat?api-version=2024", sent_headers, body, params={"key": "a b&c"}
        ) as response:
            assert response.status == 201
            assert response.headers["x-request-id"] == "r-1"
            assert response.headers["CONTENT-TYPE"].startswith("application/json")
            assert response.content_length == 11
            assert await response.read() == b'{"ok":true}'

    assert seen["method"] == "POST"
    assert seen["raw_path"] == "/v1/chat?api-version=2024&key=a+b%26c"
    assert seen["body"] == body
    headers = seen["headers"]
    assert headers["Host"] == f"127.0.0.1:{port}"
    assert headers["Content-Length"] == str(len(body))
    assert {name: headers[name] for name in sent_headers} == sent_headers
    assert "Transfer-Encoding" not in headers and "Accept-Encoding" not in headers
    assert client.in_use == 0


@pytest.mark.parametrize(
    ("path", "params", "expected"),
    [
        ("/v1/models", {"page": "2", "q": "x/y"}, "/v1/models?page=2&q=x%2Fy"),
        ("/v1/models?limit=5", None, "/v1/models?limit=5"),
        ("", None, "/"),
    ],
)
async def test_query_comes_from_params_and_from_the_url(
    make_client: ClientFactory, path: str, params: dict[str, str] | None, expected: str
) -> None:
    paths: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        paths.append(request.raw_path)
        return web.Response(body=b"ok")

    async with serving(app_with(handle)) as url:
        async with make_client().request("GET", url + path, {}, params=params) as response:
            assert await response.read() == b"ok"
    assert paths == [expected]


async def test_request_heads_are_byte_exact_with_content_length_only_when_due(
    make_client: ClientFactory,
) -> None:
    seen: list[bytes] = []
    client = make_client()
    async with RawServer(answer_each_request(OK_REPLY, seen)) as server:
        for method, data in (("GET", None), ("POST", None), ("DELETE", b"xy")):
            async with client.request(method, f"{server.url}/p?q=1", {"X-A": "1"}, data) as response:
                assert (response.status, await response.read()) == (200, b"ok")
    host = f"Host: 127.0.0.1:{server.port}\r\n"
    assert seen == [
        f"GET /p?q=1 HTTP/1.1\r\n{host}X-A: 1\r\n\r\n".encode(),
        f"POST /p?q=1 HTTP/1.1\r\n{host}X-A: 1\r\nContent-Length: 0\r\n\r\n".encode(),
        f"DELETE /p?q=1 HTTP/1.1\r\n{host}X-A: 1\r\nContent-Length: 2\r\n\r\nxy".encode(),
    ]
    assert server.accepted == 1


async def test_large_request_body_arrives_byte_exact(make_client: ClientFactory) -> None:
    received: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(body=b"ok")

    body = random.Random(1).randbytes(3 << 20)
    async with serving(app_with(handle)) as url:
        async with make_client().request("PUT", url + "/upload", {}, body) as response:
            assert await response.read() == b"ok"
    assert len(received) == 1 and received[0] == body


async def test_reply_headers_are_case_insensitive_and_keep_repeats(make_client: ClientFactory) -> None:
    reply = (
        b"HTTP/1.1 404 Not Found\r\nSet-Cookie: a=1\r\nX-Mixed-Case: V\r\nset-cookie: b=2\r\n"
        b"Content-Length: 7\r\n\r\nmissing"
    )
    async with RawServer(answer_each_request(reply)) as server:
        async with make_client().request("GET", server.url, {}) as response:
            assert response.status == 404
            assert response.headers.getall("SET-COOKIE") == ["a=1", "b=2"]
            assert response.headers["x-mixed-case"] == "V"
            assert response.content_length == 7
            assert await response.read() == b"missing"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "http:///no-host", "not a url"])
async def test_unusable_url_raises_invalid_url(make_client: ClientFactory, url: str) -> None:
    client = make_client()
    with pytest.raises(InvalidURL):
        async with client.request("GET", url, {}):
            pass
    assert client.in_use == 0


# -- keep-alive pooling ---------------------------------------------------------------------------


async def test_sequential_requests_reuse_one_connection(make_client: ClientFactory) -> None:
    upstream = PortRecorder()
    client = make_client()
    async with serving(app_with(upstream.handle)) as url:
        for number in range(50):
            async with client.request("POST", f"{url}/n", {}, b"%d" % number) as response:
                assert (response.status, await response.read()) == (200, b"ok")
    assert len(upstream.ports) == 50
    assert upstream.connections == 1
    assert client.in_use == 0


async def test_concurrent_requests_stay_within_the_limit(make_client: ClientFactory) -> None:
    ports: list[int] = []
    active = [0, 0]  # now, most at once
    in_use_seen: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        ports.append(peer_port(request))
        active[0] += 1
        active[1] = max(active)
        await asyncio.sleep(0.03)
        active[0] -= 1
        return web.Response(body=request.path.encode())

    client = make_client(limit=3)

    async def call(number: int) -> bytes:
        async with client.request("GET", f"{url}/{number}", {}) as response:
            in_use_seen.append(client.in_use)
            return await response.read()

    async with serving(app_with(handle)) as url:
        bodies = await asyncio.gather(*(call(number) for number in range(8)))
    assert bodies == [b"/%d" % number for number in range(8)]
    assert len(set(ports)) == 3
    assert active[1] == 3
    assert max(in_use_seen) <= 3
    assert client.in_use == 0


async def test_reply_read_to_the_end_is_pooled(make_client: ClientFactory) -> None:
    upstream = PortRecorder()
    client = make_client()
    async with serving(app_with(upstream.handle)) as url:
        for _ in range(2):
            async with client.request("GET", url, {}) as response:
                assert await response.read() == b"ok"
                assert client.in_use == 1
            assert client.in_use == 0
    assert upstream.connections == 1


async def test_reply_left_unread_is_not_pooled(make_client: ClientFactory) -> None:
    ports: list[int] = []
    finish = asyncio.Event()

    async def handle(request: web.Request) -> web.StreamResponse:
        ports.append(peer_port(request))
        if request.path == "/small":
            return web.Response(body=b"ok")
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"first")
        await asyncio.wait_for(finish.wait(), 2)
        await response.write(b"rest")
        return response

    client = make_client()
    async with serving(app_with(handle)) as url:
        async with client.request("GET", url + "/stream", {}) as response:
            assert await response.content.readany() == b"first"
        assert client.in_use == 0
        assert await get_body(client, url + "/small") == (200, b"ok")
        finish.set()
    assert len(ports) == 2 and len(set(ports)) == 2


def stream_then(tail: bytes, pause: float) -> RawHandler:
    """Each request: a chunked "first" at once, then `tail` (raw bytes) after `pause` seconds."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(b"first"))
            await writer.drain()
            try:  # the pause, watching for the client hanging up (it sends nothing meanwhile)
                if await asyncio.wait_for(reader.read(1), pause) == b"":
                    return
            except TimeoutError:
                pass
            writer.write(tail)
            await writer.drain()

    return handle


async def test_reply_left_early_has_its_end_drained_and_its_connection_pooled(
    make_client: ClientFactory,
) -> None:
    # An SSE stream's [DONE] comes before the chunked body's terminator: the caller leaves there.
    client = make_client()
    async with RawServer(stream_then(b"0\r\n\r\n", 0.05)) as server:
        async with client.request("GET", server.url, {}) as response:
            assert await response.content.readany() == b"first"
        assert client.in_use == 0  # the drain is the client's own business
        await asyncio.sleep(0.2)  # the terminator came 50 ms after "first"
        for _ in range(3):
            async with client.request("GET", server.url, {}) as response:
                assert await response.content.readany() == b"first"
            await asyncio.sleep(0.1)
        assert server.accepted == 1


async def test_reply_left_early_with_too_much_left_is_closed(make_client: ClientFactory) -> None:
    client = make_client()
    rest = chunk(b"x" * (DRAIN_BYTES + 1024))  # and no end yet: more than the drain may read
    async with RawServer(stream_then(rest, 0.02)) as server:
        async with client.request("GET", server.url, {}) as response:
            assert await response.content.readany() == b"first"
        assert await eventually(lambda: server.ended == 1, timeout=0.5)  # at once, not at the drain time
        assert client.in_use == 0


async def test_reply_whose_end_never_comes_is_closed_after_the_drain_time(make_client: ClientFactory) -> None:
    client = make_client()
    async with RawServer(stream_then(b"", 30.0)) as server:
        async with client.request("GET", server.url, {}) as response:
            assert await response.content.readany() == b"first"
        started = time.monotonic()
        assert await eventually(lambda: server.ended == 1, timeout=DRAIN_SECONDS + 1.0)
        assert DRAIN_SECONDS - 0.1 <= time.monotonic() - started < DRAIN_SECONDS + 1.0
        assert client.in_use == 0


async def test_a_call_that_fails_closes_its_connection_at_once(make_client: ClientFactory) -> None:
    # A client gone mid-stream must stop the upstream's generation: no drain, the connection closes.
    client = make_client()
    async with RawServer(stream_then(b"0\r\n\r\n", 5.0)) as server:
        with pytest.raises(RuntimeError):
            async with client.request("GET", server.url, {}) as response:
                assert await response.content.readany() == b"first"
                raise RuntimeError("the caller gave up")
        assert await eventually(lambda: server.ended == 1, timeout=0.5)
        assert client.in_use == 0


async def test_reply_with_connection_close_is_not_pooled(make_client: ClientFactory) -> None:
    ports: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        ports.append(peer_port(request))
        response = web.Response(body=b"bye")
        response.force_close()
        return response

    client = make_client()
    async with serving(app_with(handle)) as url:
        for _ in range(2):
            async with client.request("GET", url, {}) as response:
                assert response.headers["Connection"].lower() == "close"
                assert await response.read() == b"bye"
    assert len(set(ports)) == 2
    assert client.in_use == 0


async def test_idle_connection_closed_by_the_server_is_replaced(make_client: ClientFactory) -> None:
    async def answer_once_then_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK_REPLY)  # no "Connection: close": the client believes it may keep the connection
        await writer.drain()

    client = make_client()
    async with RawServer(answer_once_then_hang_up) as server:
        assert await get_body(client, server.url) == (200, b"ok")
        await asyncio.sleep(0.05)  # the client sees the close
        assert await get_body(client, server.url) == (200, b"ok")
    assert server.accepted == 2
    assert client.in_use == 0


def answer_first_then(after: bytes, answered_connections: int = 1) -> RawHandler:
    """Answers the first request of each of the first `answered_connections` connections; then, on
    the next request, sends `after` (maybe nothing) and hangs up: how a server whose keep-alive
    timeout fires as the client reuses the connection looks from the client."""
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        if connections <= answered_connections:
            await read_request(reader)
            writer.write(OK_REPLY)
            await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        writer.write(after)
        await writer.drain()

    return handle


async def test_pooled_connection_dropped_unanswered_is_replaced_and_the_request_sent_again(
    make_client: ClientFactory,
) -> None:
    client = make_client(limit=1)
    async with RawServer(answer_first_then(b"", answered_connections=2)) as server:
        assert await get_body(client, server.url) == (200, b"ok")
        assert await get_body(client, server.url) == (200, b"ok")  # the pooled one is dropped
    assert server.accepted == 2
    assert client.in_use == 0


@pytest.mark.parametrize(
    ("after", "answered_connections"),
    [
        (b"HTTP/1.1 200 OK\r\n", 2),  # a reply had begun: the request was read
        (b"", 1),  # the new connection is dropped too: sent again only once
    ],
    ids=["reply-begun", "second-drop"],
)
async def test_a_dropped_request_is_sent_again_at_most_once_and_only_if_nothing_came_back(
    make_client: ClientFactory, after: bytes, answered_connections: int
) -> None:
    client = make_client(limit=1)
    async with RawServer(answer_first_then(after, answered_connections)) as server:
        assert await get_body(client, server.url) == (200, b"ok")
        with pytest.raises(ServerDisconnected):
            await get_body(client, server.url)
        assert server.accepted == (1 if after else 2)
        assert client.in_use == 0
        # Every slot was given back: with a limit of one the next call still gets a connection
        # (a leaked slot would leave it queued until its read timeout).
        if after:
            assert await get_body(client, server.url) == (200, b"ok")
        else:
            with pytest.raises(ServerDisconnected):
                await get_body(client, server.url)  # a new connection, dropped: not sent again
            assert server.accepted == 3
    assert client.in_use == 0


async def test_limit_is_shared_across_origins_by_closing_an_idle_connection(
    make_client: ClientFactory,
) -> None:
    client = make_client(limit=1)
    async with (
        RawServer(answer_each_request(OK_REPLY)) as first,
        RawServer(answer_each_request(OK_REPLY)) as second,
    ):
        assert await get_body(client, first.url) == (200, b"ok")
        assert first.ended == 0  # pooled, still open
        started = time.monotonic()
        assert await get_body(client, second.url, deadline=time.monotonic() + 0.5) == (200, b"ok")
        assert time.monotonic() - started < 0.2  # no wait for a free connection
        assert await eventually(lambda: first.ended == 1)  # the idle one was closed to make room
        assert client.in_use == 0


async def test_limit_of_one_queues_the_second_request(make_client: ClientFactory, spawn: Spawn) -> None:
    ports: list[int] = []
    arrived = asyncio.Event()
    release = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        ports.append(peer_port(request))
        arrived.set()
        await asyncio.wait_for(release.wait(), 2)
        return web.Response(body=request.path.encode())

    client = make_client(limit=1)
    async with serving(app_with(handle)) as url:
        first = spawn(get_body(client, url + "/first"))
        await asyncio.wait_for(arrived.wait(), 1)
        second = spawn(get_body(client, url + "/second"))
        await asyncio.sleep(0.05)
        assert len(ports) == 1  # the second waits for the connection, it does not open another
        assert client.in_use == 1
        release.set()
        assert await asyncio.gather(first, second) == [(200, b"/first"), (200, b"/second")]
    assert len(ports) == 2 and len(set(ports)) == 1
    assert client.in_use == 0


async def test_queued_request_times_out_at_its_deadline(make_client: ClientFactory, spawn: Spawn) -> None:
    arrived = asyncio.Event()
    release = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        arrived.set()
        await asyncio.wait_for(release.wait(), 2)
        return web.Response(body=b"slow")

    client = make_client(limit=1, read_timeout=None)
    async with serving(app_with(handle)) as url:
        first = spawn(get_body(client, url))
        await asyncio.wait_for(arrived.wait(), 1)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await get_body(client, url, deadline=time.monotonic() + 0.2)
        assert 0.15 <= time.monotonic() - started < 0.6
        release.set()
        assert await first == (200, b"slow")
    assert client.in_use == 0


@pytest.mark.parametrize("cancelled_deadline", [None, 5.0], ids=["no-timeout", "with-deadline"])
async def test_cancelled_queued_request_hands_its_turn_to_the_next(
    make_client: ClientFactory, spawn: Spawn, cancelled_deadline: float | None
) -> None:
    seen: list[bytes] = []
    client = make_client(limit=1, read_timeout=None)
    async with RawServer(answer_each_request(OK_REPLY, seen)) as server:
        async with client.request("GET", server.url + "/holder", {}) as response:
            assert await response.read() == b"ok"
            deadline = None if cancelled_deadline is None else time.monotonic() + cancelled_deadline
            cancelled = spawn(get_body(client, server.url + "/cancelled", deadline))
            patient = spawn(get_body(client, server.url + "/patient", time.monotonic() + 0.5))
            await asyncio.sleep(0.02)
            assert client.in_use == 1
        # Leaving the block pooled the connection and woke `cancelled`, which has not run yet:
        # a caller whose client went away at that very moment.
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert await patient == (200, b"ok")
    assert [request.split(b" ")[1] for request in seen] == [b"/holder", b"/patient"]
    assert client.in_use == 0


# -- reply bodies ---------------------------------------------------------------------------------


async def test_chunked_body_is_streamed_piece_by_piece(make_client: ClientFactory) -> None:
    pieces = [b"data: one\n\n", b"data: two\n\n", b"data: [DONE]\n\n"]
    go_on = asyncio.Queue[None]()

    async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in pieces:
            writer.write(chunk(piece))
            await writer.drain()
            await go_on.get()  # the next piece only once the client has read this one
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await reader.read()

    client = make_client()
    async with RawServer(stream) as server:
        async with client.request("GET", server.url, {}) as response:
            assert response.content_length is None
            for piece in pieces:
                assert await response.content.readany() == piece
                go_on.put_nowait(None)
            assert await response.content.readany() == b""
        assert client.in_use == 0
        assert server.ended == 0  # a complete chunked reply keeps the connection


async def test_iter_chunked_rechunks_exactly(make_client: ClientFactory) -> None:
    sizes = [3, 5, 7, 1, 2]
    body = bytes(range(65, 65 + sum(sizes)))

    async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        offset = 0
        for size in sizes:
            writer.write(chunk(body[offset : offset + size]))
            offset += size
            await writer.drain()
            await asyncio.sleep(0.005)
        writer.write(b"0\r\n\r\n")
        await reader.read()

    async with RawServer(stream) as server:
        async with make_client().request("GET", server.url, {}) as response:
            pieces = [piece async for piece in response.content.iter_chunked(4)]
    assert [len(piece) for piece in pieces] == [4, 4, 4, 4, 2]
    assert b"".join(pieces) == body


async def test_body_without_length_ends_at_connection_close(make_client: ClientFactory) -> None:
    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst part, ")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"second part")
        await writer.drain()

    client = make_client()
    async with RawServer(until_close) as server:
        async with client.request("GET", server.url, {}) as response:
            assert response.content_length is None
            assert await response.read() == b"first part, second part"
        assert client.in_use == 0
        assert await get_body(client, server.url) == (200, b"first part, second part")
    assert server.accepted == 2


@pytest.mark.parametrize("status", [204, 200])
async def test_empty_body_completes_and_keeps_the_connection(make_client: ClientFactory, status: int) -> None:
    ports: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        ports.append(peer_port(request))
        return web.Response(status=status, body=None if status == 204 else b"")

    client = make_client()
    async with serving(app_with(handle)) as url:
        for _ in range(2):
            async with client.request("POST", url, {}, b"{}") as response:
                assert response.status == status
                assert response.content_length == (None if status == 204 else 0)
                assert await response.content.readany() == b""
                assert await response.read() == b""
    assert len(ports) == 2 and len(set(ports)) == 1
    assert client.in_use == 0


async def test_slow_reader_gets_a_large_body_complete_with_reading_paused(make_client: ClientFactory) -> None:
    body = random.Random(4).randbytes(4 << 20)

    async def handle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = len(body)
        await response.prepare(request)
        for offset in range(0, len(body), 1 << 16):
            await response.write(body[offset : offset + (1 << 16)])
        return response

    sizes: list[int] = []
    received = bytearray()
    async with serving(app_with(handle)) as url:
        async with make_client().request("GET", url, {}) as response:
            assert response.content_length == len(body)
            while piece := await response.content.readany():
                sizes.append(len(piece))
                received += piece
                await asyncio.sleep(0.02)  # a slow consumer: the rest must wait in the socket
    assert bytes(received) == body
    # Without the pause one read would hand over (nearly) the whole body after the first sleep.
    assert max(sizes) <= HIGH_WATER + (512 << 10)


# -- errors ---------------------------------------------------------------------------------------


async def test_refused_connection_raises_and_frees_its_slot(make_client: ClientFactory) -> None:
    client = make_client(limit=1)
    for _ in range(2):
        with pytest.raises(ConnectError, match="ConnectionRefusedError"):
            await get_body(client, f"http://127.0.0.1:{closed_port()}/")
        assert client.in_use == 0
    async with RawServer(answer_each_request(OK_REPLY)) as server:
        assert await get_body(client, server.url, deadline=time.monotonic() + 0.5) == (200, b"ok")


async def test_server_hanging_up_before_the_reply_raises_disconnected(make_client: ClientFactory) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    client = make_client()
    async with RawServer(hang_up) as server:
        with pytest.raises(TransportError) as raised:
            await get_body(client, server.url)
    assert isinstance(raised.value, ServerDisconnected)
    assert client.in_use == 0


@pytest.mark.parametrize("reading", ["readany", "read"])
async def test_chunked_body_cut_midway_raises_payload_error(make_client: ClientFactory, reading: str) -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(b"hello") + b"a\r\nabc")
        await writer.drain()

    client = make_client()
    received = bytearray()
    async with RawServer(cut) as server:
        with pytest.raises(ReplyError, match="mid-reply"):
            async with client.request("GET", server.url, {}) as response:
                if reading == "read":
                    await response.read()
                while piece := await response.content.readany():
                    received += piece
    assert reading == "read" or bytes(received) == b"helloabc"
    assert client.in_use == 0


async def test_body_shorter_than_its_content_length_raises_payload_error(make_client: ClientFactory) -> None:
    async def short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()

    async with RawServer(short) as server:
        with pytest.raises(ReplyError):
            await get_body(make_client(), server.url)


async def test_invalid_reply_raises_payload_error(make_client: ClientFactory) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        await reader.read()

    client = make_client()
    async with RawServer(garbage) as server:
        with pytest.raises(ReplyError, match="invalid HTTP reply"):
            await get_body(client, server.url)
        assert await eventually(lambda: server.ended == 1)  # the client dropped the connection
    assert client.in_use == 0


@pytest.mark.parametrize(
    "headers",
    [{"X-Injected": "a\r\nEvil: yes"}, {"X-Lf": "a\nb"}, {"Bad\r\nName": "v"}],
    ids=["crlf-value", "lf-value", "crlf-name"],
)
async def test_header_with_a_line_break_is_refused_before_sending(
    make_client: ClientFactory, headers: dict[str, str]
) -> None:
    client = make_client()
    async with RawServer(answer_each_request(OK_REPLY)) as server:
        with pytest.raises(InvalidURL, match="line break"):
            async with client.request("POST", server.url, headers, b"{}"):
                pass
        await asyncio.sleep(0.02)
    assert server.accepted == 0
    assert client.in_use == 0


# -- timeouts -------------------------------------------------------------------------------------


async def test_server_that_never_answers_times_out_after_read_timeout(make_client: ClientFactory) -> None:
    client = make_client(read_timeout=0.2)
    async with RawServer(never_answer) as server:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await get_body(client, server.url)
        assert 0.15 <= time.monotonic() - started < 0.6
        assert client.in_use == 0
        assert await eventually(lambda: server.ended == 1)  # the connection was closed, not pooled


async def test_deadline_bounds_the_wait_without_a_read_timeout(make_client: ClientFactory) -> None:
    client = make_client(read_timeout=None)
    async with RawServer(never_answer) as server:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await get_body(client, server.url, deadline=time.monotonic() + 0.2)
        assert 0.15 <= time.monotonic() - started < 0.6
        assert await eventually(lambda: server.ended == 1)
    assert client.in_use == 0


async def test_deadline_already_passed_raises_at_once(make_client: ClientFactory) -> None:
    client = make_client(read_timeout=None)
    async with RawServer(never_answer) as server:
        with pytest.raises(TimeoutError):
            await get_body(client, server.url, deadline=time.monotonic() - 0.01)
    assert server.accepted == 0
    assert client.in_use == 0


async def test_stalled_body_times_out_and_the_connection_is_not_reused(make_client: ClientFactory) -> None:
    async def stall_first_then_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        first = server.accepted == 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc" if first else OK_REPLY)
        await writer.drain()
        await reader.read()  # the first reply stalls 7 bytes short

    client = make_client(read_timeout=0.2)
    async with RawServer(stall_first_then_answer) as server:
        async with client.request("GET", server.url, {}) as response:
            assert await response.content.readany() == b"abc"
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await response.content.readany()
            assert 0.15 <= time.monotonic() - started < 0.6
        assert client.in_use == 0
        assert await get_body(client, server.url) == (200, b"ok")
        assert server.accepted == 2


@pytest.mark.parametrize("bound_by", ["connect_timeout", "deadline"])
async def test_tls_handshake_that_never_completes_times_out(
    make_client: ClientFactory, bound_by: str
) -> None:
    client = make_client(connect_timeout=0.2 if bound_by == "connect_timeout" else None, read_timeout=None)
    deadline = time.monotonic() + 0.2 if bound_by == "deadline" else None
    async with RawServer(never_answer) as server:  # plain TCP: the TLS hello is never answered
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await get_body(client, f"https://127.0.0.1:{server.port}/", deadline)
        assert 0.15 <= time.monotonic() - started < 0.6
    assert client.in_use == 0


# -- TLS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(certificate, key) for 127.0.0.1, signed by nobody the system trusts."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl CLI is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True,
        capture_output=True,
    )
    return cert, key


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_self_signed_certificate_is_rejected(
    make_client: ClientFactory, self_signed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    client = make_client()
    async with RawServer(answer_each_request(OK_REPLY), tls=server_tls(*self_signed)) as server:
        with pytest.raises(ConnectError, match="SSLCertVerificationError"):
            await get_body(client, server.url)
    assert server.accepted == 0  # no request got through a handshake
    assert client.in_use == 0


async def test_trusted_certificate_carries_requests_over_tls(
    make_client: ClientFactory, self_signed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The system's default context reads SSL_CERT_FILE: trust the test certificate the ordinary way.
    # The client loads that context once per process, so this test gets a fresh one of its own.
    monkeypatch.setenv("SSL_CERT_FILE", str(self_signed[0]))
    monkeypatch.setattr(http1, "_default_tls", functools.cache(ssl.create_default_context))
    seen: list[bytes] = []
    client = make_client()
    async with RawServer(answer_each_request(OK_REPLY, seen), tls=server_tls(*self_signed)) as server:
        for _ in range(3):
            assert await get_body(client, server.url + "/secure") == (200, b"ok")
    assert server.accepted == 1
    assert seen[0].startswith(f"GET /secure HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode())
    assert client.in_use == 0


# -- close() --------------------------------------------------------------------------------------


async def test_close_drops_idle_connections_and_refuses_new_requests(make_client: ClientFactory) -> None:
    client = make_client()
    async with RawServer(answer_each_request(OK_REPLY)) as server:
        assert await get_body(client, server.url) == (200, b"ok")
        await client.close()
        assert await eventually(lambda: server.ended == 1)
        with pytest.raises(ClientClosed, match="closed"):
            await get_body(client, server.url)
    assert server.accepted == 1
    assert client.in_use == 0


async def test_close_during_a_request_leaves_in_use_at_zero(make_client: ClientFactory) -> None:
    client = make_client()
    async with RawServer(answer_each_request(OK_REPLY)) as server:
        async with client.request("GET", server.url, {}) as response:
            await client.close()
            assert await response.read() == b"ok"  # a reply under way can still be read
    assert client.in_use == 0


async def test_close_fails_requests_queued_for_the_limit(make_client: ClientFactory, spawn: Spawn) -> None:
    seen: list[bytes] = []
    client = make_client(limit=1)
    async with RawServer(answer_each_request(OK_REPLY, seen)) as server:
        async with client.request("GET", server.url + "/holder", {}) as response:
            queued = spawn(get_body(client, server.url + "/queued", time.monotonic() + 0.5))
            await asyncio.sleep(0.02)
            await client.close()
            assert await response.read() == b"ok"
        with pytest.raises(ClientClosed):
            await queued
    assert [request.split(b" ")[1] for request in seen] == [b"/holder"]


# -- connect_to -----------------------------------------------------------------------------------


async def test_connect_to_dials_only_the_given_addresses_keeping_the_host_name(
    make_client: ClientFactory,
) -> None:
    # `.invalid` never resolves: success proves the name was not looked up; the refused address
    # first proves the addresses are tried in turn.
    seen: list[bytes] = []
    client = make_client()
    async with RawServer(answer_each_request(OK_REPLY, seen)) as server:
        url = f"http://media.invalid:{server.port}/a.png"
        async with client.request("GET", url, {}, connect_to=["127.0.0.2", "127.0.0.1"]) as response:
            assert await response.read() == b"ok"
    assert seen[0].startswith(f"GET /a.png HTTP/1.1\r\nHost: media.invalid:{server.port}\r\n".encode())
    assert client.in_use == 0


async def test_connect_to_with_no_address_that_answers_is_a_connect_error(make_client: ClientFactory) -> None:
    client = make_client()
    with pytest.raises(ConnectError, match="ConnectionRefusedError"):
        async with client.request(
            "GET", f"http://media.invalid:{closed_port()}/", {}, connect_to=["127.0.0.1"]
        ):
            pass
    assert client.in_use == 0
