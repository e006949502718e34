"""A lean HTTP/1.1 client for upstream calls: pooled keep-alive connections, httptools for parsing.

Why not aiohttp's ClientSession: on one core it cost 86 us of CPU per pooled POST (URL building,
cookie jar, auto headers, tracing hooks, payload objects, a StreamReader per body), and `make bench`
put it at 10-15% of a gateway request. This client writes one request block and parses the reply
with httptools (llhttp, the parser Node.js uses): 10.5 us for the same call. It does only what an
upstream call needs:

- keep-alive connections pooled per origin, at most `limit` open at once (callers wait for one);
  a connection goes back to the pool only after a complete reply the server let it keep; a call
  that leaves early on purpose (a stream's [DONE] before the body's end) has the rest drained in the
  background (at most DRAIN_BYTES within DRAIN_SECONDS), a failed or cancelled one closes it;
- a pooled connection the server drops without one byte of reply (its keep-alive timeout firing as
  we reuse the connection: the request was never read) has the request sent again, once, on a new
  connection; a new connection dropped that way, or a reply cut after its first byte, is an error,
  since the server may have acted on the request;
- TLS for https, with certificate and host name verification (the system's default context);
- `Content-Length` request bodies, one block or a list of pieces written under the transport's flow
  control (a large body is never copied whole into the socket's buffer); replies with a length,
  chunked, or ending at close, streamed as they arrive, reading paused while more than HIGH_WATER
  bytes wait for the caller;
- a byte limit per reply (`limit=`): a reply declaring or sending more raises ReplyTooLarge and
  its connection is closed, so an upstream cannot make the gateway hold an unbounded body;
- timeouts: `connect_timeout` for the TCP (and TLS) connect, `read_timeout` for any one wait on the
  server, and a per-request `deadline` bounding every wait; an expired wait raises TimeoutError;
- no redirects, cookies, proxies or compression (no Accept-Encoding is sent): upstream APIs answer
  their callers directly.

Failures are raised as aiohttp's exception types (a refused or dropped connection as a
ClientConnectionError whose `__cause__` is the OSError behind it: refused, DNS, TLS; a body cut
short as a ClientPayloadError), so the adapters' error handling is the same whichever client made
the call. A connect that takes too long raises ConnectTimeout, a TimeoutError that tells it apart
from a server slow to reply. upstream_errors.transport_error maps them all.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import httptools
from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["ConnectTimeout", "Http1Client", "Http1Response", "ReplyTooLarge"]

HIGH_WATER = 1 << 20
# A body given as pieces is written this much at a time, waiting while the transport is full.
WRITE_CHUNK = 256 * 1024
# What a call that left its reply unread early may leave behind to be drained for reuse.
DRAIN_SECONDS = 1.0
DRAIN_BYTES = 64 * 1024
KEEPALIVE_SECONDS = 15.0
_URL_CACHE_SIZE = 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]  # scheme, host, port


class ConnectTimeout(TimeoutError):
    """The TCP (and TLS) connect did not finish within `connect_timeout` or the deadline."""


class ReplyTooLarge(aiohttp.ClientPayloadError):
    """The upstream's reply is larger than the caller's limit; the connection is closed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"a reply larger than the {limit}-byte limit")
        self.limit = limit


class _Target:
    __slots__ = ("origin", "host_header", "path")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise aiohttp.InvalidURL(url)
        port = parts.port or _DEFAULT_PORTS[scheme]
        self.origin: Origin = (scheme, parts.hostname, port)
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        self.host_header = host if port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


class _Connection(asyncio.Protocol):
    """One TCP connection and the reply being read on it."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.requests = 0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.header_list: list[tuple[str, str]] = []
        self.received = False
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.body: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.error: BaseException | None = None
        self._paused = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(aiohttp.ClientPayloadError(f"invalid HTTP reply: {error}"))
            self.close()
        except httptools.HttpParserUpgrade:
            self._fail(aiohttp.ClientPayloadError("the upstream switched protocols"))
            self.close()

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.resume_writing()
        if self.headers_done and not self.complete and exc is None and self._ends_at_close():
            self.complete = True  # a body with neither a length nor chunks ends where the stream does
            self._wake()
        if not self.complete:
            if self.headers_done:
                self._fail(aiohttp.ClientPayloadError("the upstream closed the connection mid-reply"))
            else:
                self._fail(aiohttp.ServerDisconnectedError())

    def _ends_at_close(self) -> bool:
        for name, value in self.header_list:
            lowered = name.lower()
            if lowered == "content-length" or (lowered == "transfer-encoding" and "chunked" in value.lower()):
                return False
        return True

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_list.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self.keep_alive = self._parser.should_keep_alive()
        self._wake()

    # the caller's side

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self._wake()

    async def wait(self, timeout: float | None) -> None:
        """Until the parser or the connection has news; TimeoutError after `timeout` seconds."""
        if self.error is not None:
            raise self.error
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _expire, waiter) if timeout is not None else None
        try:
            await waiter
        except TimeoutError:
            self.error = TimeoutError()  # a reply that stalled is never read on, drained or reused
            raise
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def take(self) -> bytes:
        data = b"".join(self.body) if len(self.body) > 1 else self.body.popleft()
        self.body.clear()
        self.buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    def send(self, block: bytes) -> None:
        self._reset()
        self.requests += 1
        assert self.transport is not None
        self.transport.write(block)

    async def send_pieces(self, pieces: list[bytes], timeout: float | None) -> None:
        """Write a body's pieces a slice at a time, waiting whenever the transport is full."""
        transport = self.transport
        assert transport is not None
        for piece in pieces:
            with memoryview(piece) as view:
                for start in range(0, len(view), WRITE_CHUNK):
                    if self.closed or self.error is not None:
                        return  # the reply (or the lack of one) tells the caller what happened
                    transport.write(view[start : start + WRITE_CHUNK])
                    if self._writable is not None:
                        async with asyncio.timeout(timeout):
                            await self._writable

    def dropped_unanswered(self) -> bool:
        """After a ServerDisconnectedError: a pooled connection closed without one byte of reply to
        the request sent on it, so the server's idle timeout met our reuse and it never read it."""
        return self.requests > 1 and not self.received

    def drainable(self) -> bool:
        """Worth reading to its end for reuse: a reply still arriving, little of it waiting unread."""
        return (
            self.headers_done
            and not self.complete
            and self.keep_alive_possible()
            and self.error is None
            and not self.closed
            and self.buffered <= DRAIN_BYTES
        )

    def keep_alive_possible(self) -> bool:
        return self._parser.should_keep_alive()

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self.error is None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


@functools.cache
def _default_tls() -> ssl.SSLContext:
    # Loading the system's CA certificates takes tens of milliseconds on the event loop: once per
    # process, not once per provider.
    return ssl.create_default_context()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class Http1Response:
    """What adapters read: `status`, `headers`, `read()`, and `content` for streamed bodies."""

    __slots__ = ("status", "headers", "content", "_connection", "_limit")

    def __init__(self, connection: _Connection, reader: _Body, limit: int | None = None) -> None:
        self._connection = connection
        self.status = connection.status
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict(connection.header_list))
        self.content = reader
        self._limit = limit

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value is not None and value.isdigit() else None

    async def read(self) -> bytes:
        """The whole body; ReplyTooLarge if it declares or brings more than the request's limit."""
        limit = self._limit
        if limit is not None:
            declared = self.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                self._connection.close()
                raise ReplyTooLarge(limit)
        parts = []
        received = 0
        while chunk := await self.content.readany():
            parts.append(chunk)
            received += len(chunk)
            if limit is not None and received > limit:
                parts.clear()
                self._connection.close()
                raise ReplyTooLarge(limit)
        return b"".join(parts)


class _Body:
    """The reply body as it arrives: `readany()` returns what has come (b"" at its end)."""

    __slots__ = ("_connection", "_client", "_deadline")

    def __init__(self, connection: _Connection, client: Http1Client, deadline: float | None) -> None:
        self._connection = connection
        self._client = client
        self._deadline = deadline

    async def readany(self) -> bytes:
        connection = self._connection
        while not connection.body:
            if connection.complete:
                return b""
            await connection.wait(self._client.wait_limit(self._deadline))
        return connection.take()

    async def iter_chunked(self, size: int) -> AsyncIterator[bytes]:
        pending = b""
        while data := await self.readany():
            pending += data
            while len(pending) >= size:
                yield pending[:size]
                pending = pending[size:]
        if pending:
            yield pending


class Http1Client:
    """A pool of keep-alive HTTP/1.1 connections, per origin, shared by one provider's calls."""

    def __init__(self, limit: int, connect_timeout: float | None, read_timeout: float | None) -> None:
        self._limit = limit
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open = 0
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._targets: dict[str, _Target] = {}
        self._closed = False
        self._draining: set[asyncio.Task[None]] = set()
        self._draining_count = 0

    @property
    def in_use(self) -> int:
        """Connections held by calls in progress (not the pooled idle ones, nor those being drained)."""
        idle = sum(len(connections) for connections in self._idle.values())
        return self._open - idle - self._draining_count

    def wait_limit(self, deadline: float | None) -> float | None:
        """The longest one wait on the server may take: the read timeout, cut to the deadline."""
        if deadline is None:
            return self._read_timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError()
        return left if self._read_timeout is None else min(left, self._read_timeout)

    def _target(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is None:
            if len(self._targets) >= _URL_CACHE_SIZE:
                self._targets.clear()
            target = self._targets[url] = _Target(url)
        return target

    @asynccontextmanager
    async def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        data: bytes | list[bytes] | None = None,
        *,
        params: dict[str, str] | None = None,
        deadline: float | None = None,
        limit: int | None = None,
        **_: Any,
    ) -> AsyncIterator[Http1Response]:
        """An open reply; the connection returns to the pool once its reply was read to the end.

        `data` as a list of pieces is written piece by piece; `limit` caps what `read()` accepts.
        """
        target = self._target(url)
        path = target.path
        if params:
            path += ("&" if "?" in path else "?") + urlencode(params)
        pieces = None
        if type(data) is list:
            pieces, data = data, None
            block = _request_block(method, path, target.host_header, headers, None, sum(map(len, pieces)))
        else:
            block = _request_block(method, path, target.host_header, headers, data)  # type: ignore[arg-type]
        connection = await self._acquire(target.origin, deadline)
        try:
            await self._send(connection, block, deadline, pieces)
        except aiohttp.ServerDisconnectedError:
            if not connection.dropped_unanswered():
                self._discard(connection)
                raise
            connection = await self._resend(connection, block, target.origin, deadline, pieces)
        except BaseException:
            self._discard(connection)
            raise
        try:
            yield Http1Response(connection, _Body(connection, self, deadline), limit)
        except BaseException:
            # A failed or abandoned call closes its connection at once: that also tells the
            # upstream to stop generating what nobody will read.
            self._discard(connection)
            raise
        if connection.reusable() or not connection.drainable():
            self._release(connection)
        else:
            # Left early on purpose (a stream's [DONE] comes before its chunked body's end): read
            # what is left in the background, so the next call finds the connection in the pool.
            self._draining_count += 1
            task = asyncio.get_running_loop().create_task(self._drain(connection))
            self._draining.add(task)
            task.add_done_callback(self._draining.discard)

    async def _send(
        self, connection: _Connection, block: bytes, deadline: float | None, pieces: list[bytes] | None = None
    ) -> None:
        """Send one request and wait for the head of its reply."""
        connection.send(block)
        if pieces:
            await connection.send_pieces(pieces, self.wait_limit(deadline))
        while not connection.headers_done:
            await connection.wait(self.wait_limit(deadline))

    async def _resend(
        self,
        stale: _Connection,
        block: bytes,
        origin: Origin,
        deadline: float | None,
        pieces: list[bytes] | None = None,
    ) -> _Connection:
        """Send again, once, on a new connection that takes the stale one's slot (a second pooled
        connection could be just as stale)."""
        stale.close()
        connection = await self._connect_counted(origin, deadline)
        try:
            await self._send(connection, block, deadline, pieces)
        except BaseException:
            self._discard(connection)
            raise
        return connection

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        self._release(connection)

    async def _acquire(self, origin: Origin, deadline: float | None) -> _Connection:
        if self._closed:
            raise aiohttp.ClientConnectionError("the upstream client is closed")
        connection = self._take_idle(origin)
        if connection is not None:
            return connection
        while self._open >= self._limit:
            if self._close_idle_elsewhere(origin):
                break
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                async with asyncio.timeout(self.wait_limit(deadline)):
                    await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken but leaving: the next caller gets the turn
                raise
            finally:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
            if self._closed:
                raise aiohttp.ClientConnectionError("the upstream client is closed")
            connection = self._take_idle(origin)
            if connection is not None:
                return connection
        self._open += 1
        return await self._connect_counted(origin, deadline)

    async def _connect_counted(self, origin: Origin, deadline: float | None) -> _Connection:
        """Connect for a slot already counted in `_open`; the slot is given back if that fails."""
        try:
            return await self._connect(origin, deadline)
        except BaseException:
            self._open -= 1
            self._wake_one()
            raise

    def _take_idle(self, origin: Origin) -> _Connection | None:
        """A pooled connection to `origin` still fit for a call; the closed and stale ones are dropped."""
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if not connection.closed and now - connection.idle_since <= KEEPALIVE_SECONDS:
                return connection
            connection.close()
            self._open -= 1
        return None

    async def _connect(self, origin: Origin, deadline: float | None) -> _Connection:
        scheme, host, port = origin
        tls = None
        if scheme == "https":
            tls = _default_tls()
        limit = self._connect_timeout
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError()
            limit = left if limit is None else min(limit, left)
        loop = asyncio.get_running_loop()
        connecting = loop.create_connection(
            lambda: _Connection(origin), host, port, ssl=tls, server_hostname=host if tls else None
        )
        try:
            _, connection = await asyncio.wait_for(connecting, limit)
        except TimeoutError:
            # An OSError too, but a slow connect is a timeout (408), not an unreachable host.
            raise ConnectTimeout() from None
        except OSError as error:
            # The cause tells refused, DNS and TLS apart for the error the client gets.
            raise aiohttp.ClientConnectionError(f"cannot connect: {type(error).__name__}") from error
        return connection

    def _close_idle_elsewhere(self, origin: Origin) -> bool:
        """Make room at the limit by closing an idle connection to another origin."""
        for other, connections in self._idle.items():
            if other != origin and connections:
                connections.pop().close()
                self._open -= 1
                return True
        return False

    async def _drain(self, connection: _Connection) -> None:
        drained = 0
        try:
            async with asyncio.timeout(DRAIN_SECONDS):
                while not connection.complete:
                    if connection.body:
                        drained += len(connection.take())
                        if drained > DRAIN_BYTES:
                            break
                        continue
                    await connection.wait(None)
        except BaseException:  # noqa: BLE001 - whatever stopped the drain, the connection is closed
            connection.close()
        finally:
            if connection.body:
                connection.take()
            self._draining_count -= 1
            self._release(connection)

    def _release(self, connection: _Connection) -> None:
        if connection.reusable() and not self._closed:
            connection.idle_since = time.monotonic()
            self._idle.setdefault(connection.origin, []).append(connection)
        else:
            connection.close()
            self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        """Close the idle connections and refuse new calls; calls in progress finish on theirs."""
        self._closed = True
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
                self._open -= 1
        self._idle.clear()
        for task in list(self._draining):
            task.cancel()
        while self._waiting:
            self._wake_one()


def _request_block(
    method: str, path: str, host: str, headers: dict[str, str], data: bytes | None, length: int | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"]
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            raise aiohttp.ClientConnectionError(f"the header {name!r} holds a line break")
        lines.append(f"{name}: {value}\r\n")
    if length is not None:
        lines.append(f"Content-Length: {length}\r\n")
    elif data is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {0 if data is None else len(data)}\r\n")
    lines.append("\r\n")
    head = "".join(lines).encode()
    return head + data if data else head
