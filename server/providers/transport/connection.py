"""One HTTP/1.1 connection as an asyncio protocol, and the reply a caller reads from it.

The reply is parsed with httptools (llhttp, the parser Node.js uses) as bytes arrive; its body
waits in a queue for the caller, with reading paused while more than HIGH_WATER bytes are unread.
What goes wrong is kept as one of the transport's errors (`errors.py`) and raised at the caller's
next wait.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from server.providers.transport.errors import (
    ReadTimeout,
    ReplyError,
    ReplyTooLarge,
    ServerDisconnected,
)

__all__ = ["HIGH_WATER", "Http1Connection", "Http1Response", "Origin", "ReplyBody", "wait_limit"]

HIGH_WATER = 1 << 20
# A body given as pieces is written this much at a time, waiting while the transport is full.
WRITE_CHUNK = 256 * 1024

Origin = tuple[str, str, int]  # scheme, host, port: the pool's key


def wait_limit(read_timeout: float | None, deadline: float | None) -> float | None:
    """The longest one wait on the server may take: the read timeout, cut to the deadline."""
    if deadline is None:
        return read_timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise ReadTimeout()
    return left if read_timeout is None else min(left, read_timeout)


class Http1Connection(asyncio.Protocol):
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
            self._fail(ReplyError(f"invalid HTTP reply: {error}"))
            self.close()
        except httptools.HttpParserUpgrade:
            self._fail(ReplyError("the upstream switched protocols"))
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
                self._fail(ReplyError("the upstream closed the connection mid-reply"))
            else:
                self._fail(ServerDisconnected("the upstream closed the connection without answering"))

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
        """Until the parser or the connection has news; ReadTimeout after `timeout` seconds."""
        if self.error is not None:
            raise self.error
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _expire, waiter) if timeout is not None else None
        try:
            await waiter
        except ReadTimeout as error:
            self.error = error  # a reply that stalled is never read on, drained or reused
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
                        try:
                            async with asyncio.timeout(timeout):
                                await self._writable
                        except TimeoutError:
                            raise ReadTimeout("the upstream stopped reading the request") from None

    def dropped_unanswered(self) -> bool:
        """After a ServerDisconnected: a pooled connection closed without one byte of reply to the
        request sent on it, so the server's idle timeout met our reuse and it never read it."""
        return self.requests > 1 and not self.received

    def drainable(self, most: int) -> bool:
        """Worth reading to its end for reuse: a reply still arriving, at most `most` bytes unread."""
        return (
            self.headers_done
            and not self.complete
            and self._parser.should_keep_alive()
            and self.error is None
            and not self.closed
            and self.buffered <= most
        )

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self.error is None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(ReadTimeout())


class Http1Response:
    """What adapters read: `status`, `headers`, `read()`, and `content` for streamed bodies."""

    __slots__ = ("status", "headers", "content", "_connection", "_limit")

    def __init__(self, connection: Http1Connection, reader: ReplyBody, limit: int | None = None) -> None:
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


class ReplyBody:
    """The reply body as it arrives: `readany()` returns what has come (b"" at its end)."""

    __slots__ = ("_connection", "_read_timeout", "_deadline")

    def __init__(
        self, connection: Http1Connection, read_timeout: float | None, deadline: float | None
    ) -> None:
        self._connection = connection
        self._read_timeout = read_timeout
        self._deadline = deadline

    async def readany(self) -> bytes:
        connection = self._connection
        while not connection.body:
            if connection.complete:
                return b""
            await connection.wait(wait_limit(self._read_timeout, self._deadline))
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
