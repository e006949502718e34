"""A lean HTTP/1.1 client for upstream calls: pooled keep-alive connections, httptools for parsing.

Why not aiohttp's ClientSession: on one core it cost 86 us of CPU per pooled POST (URL building,
cookie jar, auto headers, tracing hooks, payload objects, a StreamReader per body), and `make bench`
put it at 10-15% of a gateway request. This client writes one request block and parses the reply
with httptools (connection.py): 10.5 us for the same call. It does only what an upstream call needs:

- keep-alive connections pooled per origin, at most `limit` open at once (callers wait for one);
  a connection goes back to the pool only after a complete reply the server let it keep; a call
  that leaves early on purpose (a stream's [DONE] before the body's end) has the rest drained in the
  background (at most DRAIN_BYTES within DRAIN_SECONDS), a failed or cancelled one closes it;
- a pooled connection the server drops without one byte of reply (its keep-alive timeout firing as
  we reuse the connection: the request was never read) has the request sent again, once, on a new
  connection; a new connection dropped that way, or a reply cut after its first byte, is an error,
  since the server may have acted on the request;
- TLS for https, with certificate and host name verification (the system's default context, or the
  one given);
- HTTP proxies (proxies.py): a plain http upstream through one in absolute form, an https one
  through a CONNECT tunnel (tunnel.py) with TLS end to end; a call with no proxy pays nothing for it;
- `connect_to`: dial these addresses instead of resolving the host (Host and TLS name unchanged),
  so a caller that vetted the addresses (media fetches) connects to exactly those; through a proxy
  the tunnel is opened to the address, so the proxy does not resolve the name again either;
- `Content-Length` request bodies, one block or a list of pieces written under the transport's flow
  control (a large body is never copied whole into the socket's buffer); replies with a length,
  chunked, or ending at close, streamed as they arrive;
- a byte limit per reply (`limit=`): a reply declaring or sending more raises ReplyTooLarge and
  its connection is closed, so an upstream cannot make the gateway hold an unbounded body;
- timeouts: `connect_timeout` for the TCP (tunnel and TLS) connect, `read_timeout` for any one wait
  on the server, and a per-request `deadline` bounding every wait;
- no redirects, cookies or compression (no Accept-Encoding is sent): upstream APIs answer their
  callers directly.

Every failure is one of the transport's errors (errors.py), raised here and nowhere else.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode, urlsplit

from server.providers.transport.connection import Http1Connection, Http1Response, Origin, ReplyBody
from server.providers.transport.errors import (
    ClientClosed,
    ConnectError,
    ConnectTimeout,
    InvalidURL,
    PoolTimeout,
    ProxyError,
    ReadTimeout,
    ServerDisconnected,
    TransportError,
)
from server.providers.transport.proxies import Proxy, ProxyRoutes
from server.providers.transport.tunnel import open_tunnel

__all__ = ["DRAIN_BYTES", "DRAIN_SECONDS", "Http1Client"]

# What a call that left its reply unread early may leave behind to be drained for reuse.
DRAIN_SECONDS = 1.0
DRAIN_BYTES = 64 * 1024
KEEPALIVE_SECONDS = 15.0
_URL_CACHE_SIZE = 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}


class _Target:
    """Where a URL's calls go: the pool's key, the request line's target and Host, and the route."""

    __slots__ = ("origin", "scheme", "host", "port", "head", "path", "proxy", "forwarded")

    def __init__(self, url: str, routes: ProxyRoutes | None, pinned: bool = False) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise InvalidURL("only http:// and https:// URLs can be called")
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError:
            raise InvalidURL("the URL's port is not a number from 0 to 65535") from None
        if not parts.hostname:
            raise InvalidURL("the URL has no host")
        self.scheme, self.host, self.port = scheme, parts.hostname, port
        self.origin: Origin = (scheme, parts.hostname, port)
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        host_header = host if port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
        self.head = f"Host: {host_header}\r\n"
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.proxy: Proxy | None = routes.proxy_for(scheme, parts.hostname, port) if routes else None
        # Plain http goes to the proxy in absolute form, unless the caller pinned the addresses to
        # dial: then a tunnel, so that the proxy never resolves the name itself.
        self.forwarded = self.proxy is not None and scheme == "http" and not pinned
        if self.forwarded:
            assert self.proxy is not None
            self.origin = ("proxy", self.proxy.host, self.proxy.port)
            self.path = f"http://{host_header}{self.path}"
            if self.proxy.authorization is not None:
                self.head += f"Proxy-Authorization: {self.proxy.authorization}\r\n"


@functools.cache
def _default_tls() -> ssl.SSLContext:
    # Loading the system's CA certificates takes tens of milliseconds on the event loop: once per
    # process, not once per provider.
    return ssl.create_default_context()


class Http1Client:
    """A pool of keep-alive HTTP/1.1 connections, per origin, shared by one provider's calls."""

    def __init__(
        self,
        limit: int,
        connect_timeout: float | None,
        read_timeout: float | None,
        *,
        proxies: ProxyRoutes | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._limit = limit
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._routes = proxies if proxies is not None and proxies.any else None
        self._tls = tls
        self._idle: dict[Origin, list[Http1Connection]] = {}
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
        """The longest one wait on the server may take: the read timeout, cut to the deadline.

        (connection.wait_limit's body, written out: this runs on every call, and each call counts.)
        """
        if deadline is None:
            return self._read_timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise ReadTimeout()
        return left if self._read_timeout is None else min(left, self._read_timeout)

    def _target(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is None:
            if len(self._targets) >= _URL_CACHE_SIZE:
                self._targets.clear()
            target = self._targets[url] = _Target(url, self._routes)
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
        connect_to: Sequence[str] | None = None,
        **_: Any,
    ) -> AsyncIterator[Http1Response]:
        """An open reply; the connection returns to the pool once its reply was read to the end.

        `data` as a list of pieces is written piece by piece; `limit` caps what `read()` accepts;
        `connect_to` is the addresses to dial for the URL's host, in order, instead of resolving it.
        """
        target = self._target(url) if connect_to is None else _Target(url, self._routes, pinned=True)
        path = target.path
        if params:
            path += ("&" if "?" in path else "?") + urlencode(params)
        pieces = None
        if type(data) is list:
            pieces, data = data, None
            block = _request_block(method, path, target.head, headers, None, sum(map(len, pieces)))
        else:
            block = _request_block(method, path, target.head, headers, data)  # type: ignore[arg-type]
        connection = await self._acquire(target, connect_to, deadline)
        try:
            await self._send(connection, block, deadline, pieces)
        except ServerDisconnected:
            if not connection.dropped_unanswered():
                self._discard(connection)
                raise
            connection = await self._resend(connection, block, target, connect_to, deadline, pieces)
        except BaseException:
            self._discard(connection)
            raise
        if target.forwarded and connection.status == 407:
            self._discard(connection)
            assert target.proxy is not None
            raise ProxyError(
                target.proxy.shown, "asked for credentials, or refused the ones given (HTTP 407)", 407
            )
        try:
            yield Http1Response(connection, ReplyBody(connection, self._read_timeout, deadline), limit)
        except BaseException:
            # A failed or abandoned call closes its connection at once: that also tells the
            # upstream to stop generating what nobody will read.
            self._discard(connection)
            raise
        if connection.reusable() or not connection.drainable(DRAIN_BYTES):
            self._release(connection)
        else:
            # Left early on purpose (a stream's [DONE] comes before its chunked body's end): read
            # what is left in the background, so the next call finds the connection in the pool.
            self._draining_count += 1
            task = asyncio.get_running_loop().create_task(self._drain(connection))
            self._draining.add(task)
            task.add_done_callback(self._draining.discard)

    async def _send(
        self,
        connection: Http1Connection,
        block: bytes,
        deadline: float | None,
        pieces: list[bytes] | None = None,
    ) -> None:
        """Send one request and wait for the head of its reply."""
        connection.send(block)
        if pieces:
            await connection.send_pieces(pieces, self.wait_limit(deadline))
        while not connection.headers_done:
            await connection.wait(self.wait_limit(deadline))

    async def _resend(
        self,
        stale: Http1Connection,
        block: bytes,
        target: _Target,
        connect_to: Sequence[str] | None,
        deadline: float | None,
        pieces: list[bytes] | None = None,
    ) -> Http1Connection:
        """Send again, once, on a new connection that takes the stale one's slot (a second pooled
        connection could be just as stale)."""
        stale.close()
        connection = await self._connect_counted(target, connect_to, deadline)
        try:
            await self._send(connection, block, deadline, pieces)
        except BaseException:
            self._discard(connection)
            raise
        return connection

    def _discard(self, connection: Http1Connection) -> None:
        connection.close()
        self._release(connection)

    async def _acquire(
        self, target: _Target, connect_to: Sequence[str] | None, deadline: float | None
    ) -> Http1Connection:
        if self._closed:
            raise ClientClosed("the upstream client is closed")
        origin = target.origin
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
            except TimeoutError:
                raise PoolTimeout(f"no connection came free (all {self._limit} in use)") from None
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken but leaving: the next caller gets the turn
                raise
            finally:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
            if self._closed:
                raise ClientClosed("the upstream client is closed")
            connection = self._take_idle(origin)
            if connection is not None:
                return connection
        self._open += 1
        return await self._connect_counted(target, connect_to, deadline)

    async def _connect_counted(
        self, target: _Target, connect_to: Sequence[str] | None, deadline: float | None
    ) -> Http1Connection:
        """Connect for a slot already counted in `_open`; the slot is given back if that fails."""
        try:
            return await self._connect(target, connect_to, deadline)
        except BaseException:
            self._open -= 1
            self._wake_one()
            raise

    def _take_idle(self, origin: Origin) -> Http1Connection | None:
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

    async def _connect(
        self, target: _Target, connect_to: Sequence[str] | None, deadline: float | None
    ) -> Http1Connection:
        limit = self._connect_timeout
        proxy = target.proxy.shown if target.proxy is not None else None
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConnectTimeout(proxy)
            limit = left if limit is None else min(limit, left)
        try:
            return await asyncio.wait_for(self._dial(target, connect_to), limit)
        except TimeoutError as error:
            if isinstance(error, TransportError):
                raise
            # An OSError too, but a slow connect is a timeout (408), not an unreachable host.
            raise ConnectTimeout(proxy) from None

    async def _dial(self, target: _Target, connect_to: Sequence[str] | None) -> Http1Connection:
        """One connection for `target`: direct, to its proxy, or tunnelled through its proxy; each of
        `connect_to` (else the host) tried in turn."""
        tls = (self._tls or _default_tls()) if target.scheme == "https" else None
        proxy = target.proxy
        connection = Http1Connection(target.origin)
        if target.forwarded:
            assert proxy is not None
            try:
                await asyncio.get_running_loop().create_connection(lambda: connection, proxy.host, proxy.port)
            except OSError as error:
                raise ProxyError(
                    proxy.shown, f"could not be connected to ({type(error).__name__})"
                ) from error
            return connection
        failure: BaseException | None = None
        for address in connect_to or (target.host,):
            connection = Http1Connection(target.origin)
            try:
                if proxy is None:
                    await asyncio.get_running_loop().create_connection(
                        lambda: connection,  # noqa: B023 - awaited within this iteration
                        address,
                        target.port,
                        ssl=tls,
                        server_hostname=target.host if tls else None,
                    )
                else:
                    authority = f"[{address}]:{target.port}" if ":" in address else f"{address}:{target.port}"
                    await open_tunnel(proxy, authority, connection, tls, target.host)
                return connection
            except ProxyError:
                raise  # the same proxy answers for every address
            except OSError as error:
                # The cause tells refused, DNS and TLS apart for the error the client gets.
                failure = ConnectError(f"cannot connect: {type(error).__name__}")
                failure.__cause__ = error
            except ConnectError as error:
                failure = error
        assert failure is not None
        raise failure

    def _close_idle_elsewhere(self, origin: Origin) -> bool:
        """Make room at the limit by closing an idle connection to another origin."""
        for other, connections in self._idle.items():
            if other != origin and connections:
                connections.pop().close()
                self._open -= 1
                return True
        return False

    async def _drain(self, connection: Http1Connection) -> None:
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

    def _release(self, connection: Http1Connection) -> None:
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
    method: str, path: str, head: str, headers: dict[str, str], data: bytes | None, length: int | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1\r\n{head}"]
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            raise InvalidURL(f"the header {name!r} holds a line break")
        lines.append(f"{name}: {value}\r\n")
    if length is not None:
        lines.append(f"Content-Length: {length}\r\n")
    elif data is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {0 if data is None else len(data)}\r\n")
    lines.append("\r\n")
    head_block = "".join(lines).encode()
    return head_block + data if data else head_block
