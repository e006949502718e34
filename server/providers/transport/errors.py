"""The transport's errors: one tree for every failure on the wire, whichever call made it.

    TransportError              no HTTP answer, or a cut one
    ├── ConnectError            no connection to the upstream; `__cause__` is the OSError behind it
    │   │                       (refused, DNS, TLS)
    │   └── ProxyError          the proxy could not be reached, or would not relay (`status` is its
    │                           answer to CONNECT, if it gave one)
    ├── TransportTimeout        also a TimeoutError
    │   ├── ConnectTimeout      the TCP (and tunnel, and TLS) connect took too long
    │   ├── ReadTimeout         a wait on the server passed the read timeout or the deadline
    │   └── PoolTimeout         no connection came free within the wait allowed
    ├── ServerDisconnected      the server closed the connection without a byte of reply
    ├── ReplyError              the reply was cut short, or is not HTTP/1.1
    │   └── ReplyTooLarge       the reply is larger than the caller's limit
    ├── InvalidURL              the URL or a header cannot be sent (scheme, host, a line break)
    └── ClientClosed            the client was closed

The client raises these itself (an OSError from connecting becomes a ConnectError with the OSError
as its cause); `server.providers.upstream_errors.transport_error` maps the tree onto the gateway's
errors, once. No message here holds a proxy's credentials: a proxy is named by
`Proxy.shown` (scheme, host and port) only.
"""

from __future__ import annotations

__all__ = [
    "ClientClosed",
    "ConnectError",
    "ConnectTimeout",
    "InvalidURL",
    "PoolTimeout",
    "ProxyError",
    "ReadTimeout",
    "ReplyError",
    "ReplyTooLarge",
    "ServerDisconnected",
    "TransportError",
    "TransportTimeout",
]


class TransportError(Exception):
    """A call failed on the wire: no HTTP answer came, or the one that came was cut."""


class ConnectError(TransportError):
    """No connection to the upstream; the OSError behind it (refused, DNS, TLS) is `__cause__`."""


class ProxyError(ConnectError):
    """The proxy could not be reached, or would not relay the call.

    `proxy` is the proxy as shown to operators (scheme, host and port; no credentials), `reason` what
    it did without naming it (for clients, who are not told the gateway's hosts); `status` is its
    HTTP answer when it refused a tunnel or asked for credentials (407), None when it gave none.
    """

    def __init__(self, proxy: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"the proxy {proxy} {reason}")
        self.proxy = proxy
        self.reason = reason
        self.status = status


class TransportTimeout(TransportError, TimeoutError):
    """A wait passed its limit."""


class ConnectTimeout(TransportTimeout):
    """The TCP (and tunnel, and TLS) connect did not finish within `connect_timeout` or the deadline.

    `proxy` is the proxy the connect went through (as shown: no credentials), if any.
    """

    def __init__(self, proxy: str | None = None) -> None:
        super().__init__()
        self.proxy = proxy


class ReadTimeout(TransportTimeout):
    """A wait on the server passed the read timeout or the request's deadline."""


class PoolTimeout(TransportTimeout):
    """Every connection stayed in use for longer than the call could wait for one."""


class ServerDisconnected(TransportError):
    """The server closed the connection without sending a byte of the reply."""


class ReplyError(TransportError):
    """The reply was cut short or is not HTTP/1.1."""


class ReplyTooLarge(ReplyError):
    """The upstream's reply is larger than the caller's limit; the connection is closed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"a reply larger than the {limit}-byte limit")
        self.limit = limit


class InvalidURL(TransportError):
    """The URL cannot be called (not http or https, no host), or a header holds a line break."""


class ClientClosed(TransportError):
    """The client was closed; it takes no new calls."""
