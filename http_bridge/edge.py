"""The HTTP edge: aiohttp's connection protocol with deadlines, a connection cap, and its own refusals
in OpenAI's error shape (issue #20).

What aiohttp offers is used as given: `max_line_size`, `max_field_size` and `max_headers` bound a
request head, `keepalive_timeout` closes idle connections (since 3.14 also one that never sends a
request), `client_max_size` bounds the body, `handler_cancellation` ends a handler whose client left.
What it does not have is added here, in a subclass of its `RequestHandler` (one per connection):

- A header deadline (`server.header_timeout`): a request head must be complete within it, counted
  from the connection's start, or from the first byte of a later request on a kept-alive connection
  (an idle kept-alive connection is `keepalive_timeout`'s business). Past it: a 408, then close.
  aiohttp has none: a client sending one header byte a second held its connection for an hour.
- A body deadline (`server.body_timeout`): once the head is in, the whole body must follow within
  it. Past it the handler's read fails with a 408, and the connection closes after that answer.
- A cap on open connections per process (`server.max_connections`): one more is answered 503 at once
  and closed (a client that had already sent its request may see a reset instead).
- Refusals in our shape: aiohttp answers a request its parser rejects in plain text from
  `handle_error`; here that is OpenAI's error body with a fitting status (431 for a head too large,
  else 400), or Anthropic's on the Messages paths (read from the head's first bytes: the parser
  leaves no path to a request it refused, see refusals.py), logged at debug level only, since anyone
  can send garbage. A body the parser rejects
  once its handler is reading it (a bad chunk size) fails that handler's read with a 400; aiohttp
  would leave the handler waiting for the rest of a body that never comes.

Each deadline is one `call_at` handle per connection, re-armed lazily when it fires: a request on a
kept-alive connection costs a stamp of the loop's time, not a timer. The subclass reads two
RequestHandler internals (`_messages`, the parsed requests not yet handled, and `_waiter`, set while
the connection waits for its next request); they were checked against aiohttp 3.14, and the tests in
tests/e2e/test_edge_*.py fail if an upgrade changes them.
"""

from __future__ import annotations

import asyncio
import http
import logging
import resource
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, ContentEncodingError, HttpProcessingError, LineTooLong
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler, _ErrInfo
from aiohttp.web_request import BaseRequest

from http_bridge.messages_errors import anthropic_error, is_messages_path
from http_bridge.refusals import HEAD_PREFIX_BYTES, head_path, refusal_response
from server.errors import (
    GatewayError,
    HeadersTooLarge,
    InternalError,
    InvalidRequest,
    NoAvailableProvider,
    RequestTimeout,
)
from server.observability import metrics

__all__ = ["EdgeAppRunner", "EdgeSettings", "connection_limit", "protocol_error"]

logger = logging.getLogger("siraya.bridge")

INVALID_HTTP = "invalid_http_request"
# aiohttp's wording (both of its parsers) when a request has more than `max_headers` fields.
_TOO_MANY_HEADERS = "Too many headers received"
# An answer after which the connection closes: the rest of what the client sent is not read.
_CLOSE = {"connection": "close"}


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    """The `server:` settings of the edge (see server/config.py for each one's meaning)."""

    header_timeout: float = 10.0
    body_timeout: float = 60.0
    keepalive_timeout: float = 75.0
    # 0: half the process's open-file limit.
    max_connections: int = 0
    max_header_bytes: int = 8190
    max_headers: int = 128

    def aiohttp_options(self) -> dict[str, Any]:
        """The settings aiohttp's own RequestHandler takes."""
        return {
            "keepalive_timeout": self.keepalive_timeout,
            "max_line_size": self.max_header_bytes,
            "max_field_size": self.max_header_bytes,
            "max_headers": self.max_headers,
        }


def connection_limit(configured: int) -> int:
    """`configured`, or when it is 0 half the open-file limit: the other half stays for upstream
    connections, the database, the listening sockets and logs."""
    if configured > 0:
        return configured
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 16
    return max(64, soft // 2)


def protocol_error(
    status: int, exc: BaseException | None, max_field_size: int, max_headers: int
) -> GatewayError:
    """What a failure aiohttp reports to `handle_error` becomes: a parser error is the client's (431
    for a head too large, else 400); 504 is a handler that raised TimeoutError; anything else a bug."""
    if isinstance(exc, LineTooLong):
        return HeadersTooLarge(
            f"The request line or a header field is longer than the {max_field_size} bytes"
            " this gateway accepts."
        )
    if isinstance(exc, BadHttpMessage) and exc.message == _TOO_MANY_HEADERS:
        return HeadersTooLarge(
            f"The request has more than the {max_headers} header fields this gateway accepts."
        )
    if isinstance(exc, ContentEncodingError):
        return InvalidRequest(
            "The request's Content-Encoding is not one this gateway decodes.", code="invalid_body_encoding"
        )
    if isinstance(exc, HttpProcessingError):
        return InvalidRequest(f"The request is not valid HTTP/1.1: {_reason(exc)}.", code=INVALID_HTTP)
    if status == 504:
        return RequestTimeout("The gateway took too long to process the request.")
    return InternalError("The gateway failed to process the request.")


def _reason(exc: HttpProcessingError) -> str:
    # llhttp's reason comes first, then a colon and a dump of the offending bytes, which stays out.
    reason = str(exc.message).split(":", 1)[0].strip().rstrip(".")
    return reason[:100] or "malformed request"


def _malformed_body(exc: BaseException) -> InvalidRequest:
    reason = _reason(exc) if isinstance(exc, HttpProcessingError) else "malformed body"
    return InvalidRequest(
        f"The request body is not valid HTTP/1.1: {reason}.", code=INVALID_HTTP, headers=_CLOSE
    )


def _raw_response(error: GatewayError, *extra_headers: str, anthropic: bool = False) -> bytes:
    """A whole response that closes the connection, for answers written with no request to answer:
    in OpenAI's shape, or with `anthropic` in Anthropic's (no request id: there is no request)."""
    if anthropic:
        status, error_type = anthropic_error(error)
        body = orjson.dumps(
            {"type": "error", "error": {"type": error_type, "message": error.message}, "request_id": None}
        )
    else:
        status = error.kind.http_status
        body = orjson.dumps(error.envelope())
    head = (
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *extra_headers,
    )
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class EdgeState:
    """What the connections of one server share: the limits, the answers made once, the open count."""

    __slots__ = (
        "header_timeout",
        "body_timeout",
        "max_connections",
        "open",
        "too_many",
        "headers_too_slow",
        "headers_too_slow_anthropic",
        "header_timeouts",
        "body_timeouts",
    )

    def __init__(self, settings: EdgeSettings) -> None:
        self.header_timeout = settings.header_timeout
        self.body_timeout = settings.body_timeout
        self.max_connections = connection_limit(settings.max_connections)
        self.open = 0
        # Refused before a byte is read: no path to pick a door's shape by, so OpenAI's.
        self.too_many = _raw_response(
            NoAvailableProvider(
                "The gateway has too many open connections; retry shortly.", code="too_many_connections"
            ),
            "Retry-After: 1",
        )
        too_slow = RequestTimeout(
            f"The request headers were not received within {settings.header_timeout:g} seconds."
        )
        self.headers_too_slow = _raw_response(too_slow)
        self.headers_too_slow_anthropic = _raw_response(too_slow, anthropic=True)
        self.header_timeouts = metrics.HTTP_TIMEOUTS.labels("headers")
        self.body_timeouts = metrics.HTTP_TIMEOUTS.labels("body")


class EdgeRequestHandler(RequestHandler):
    """aiohttp's protocol for one connection, with the deadlines, the cap and the refusals above."""

    __slots__ = (
        "_edge",
        "_counted",
        "_head_started",
        "_head_bytes",
        "_head_timer",
        "_body",
        "_body_started",
        "_body_timer",
    )

    def __init__(self, manager: web.Server, edge: EdgeState, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._edge = edge
        self._counted = False
        # When the head being received began; None while no request head is in progress.
        self._head_started: float | None = None
        # The first bytes of the latest request head (its request line): which door a refusal is for.
        self._head_bytes = b""
        self._head_timer: asyncio.TimerHandle | None = None
        # The body being received (the latest request's), and when its head was complete.
        self._body: StreamReader | None = None
        self._body_started = 0.0
        self._body_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        edge = self._edge
        if edge.open >= edge.max_connections:
            metrics.HTTP_CONNECTIONS_REFUSED.inc()
            transport.write(edge.too_many)  # type: ignore[attr-defined]
            transport.close()
            return
        edge.open += 1
        self._counted = True
        metrics.HTTP_CONNECTIONS.inc()
        super().connection_made(transport)
        loop = self._loop
        self._head_started = loop.time()
        self._head_timer = loop.call_at(self._head_started + edge.header_timeout, self._head_deadline)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._counted:
            self._counted = False
            self._edge.open -= 1
            metrics.HTTP_CONNECTIONS.dec()
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._body = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_started is None and self._waiter is not None:
            # The first bytes of the next request on a kept-alive connection: its head's clock starts.
            self._head_started = self._loop.time()
            self._head_bytes = b""
            if self._head_timer is None:
                self._head_timer = self._loop.call_at(
                    self._head_started + self._edge.header_timeout, self._head_deadline
                )
        if self._head_started is not None and len(self._head_bytes) < HEAD_PREFIX_BYTES:
            self._head_bytes += data[: HEAD_PREFIX_BYTES - len(self._head_bytes)]
        super().data_received(data)
        messages = self._messages
        if messages:
            self._head_started = None
            message, payload = messages[-1]
            if isinstance(message, _ErrInfo):
                body = self._body
                # Popped only while a request is left for the connection's loop to take (or it is
                # busy with one): it must never wake to an empty queue.
                if body is not None and not body.is_eof() and (len(messages) > 1 or self._waiter is None):
                    # The parser refused the body a handler is reading: that handler answers, a 400.
                    messages.pop()
                    self._fail_body(body, _malformed_body(message.exc))
            elif payload is not self._body and not payload.is_eof():
                self._body = payload
                self._body_started = self._loop.time()
                if self._body_timer is None:
                    self._body_timer = self._loop.call_at(
                        self._body_started + self._edge.body_timeout, self._body_deadline
                    )
        body = self._body
        if body is not None and body.exception() is not None and not body.is_eof():
            # aiohttp failed the body itself (its Content-Encoding would not decode): the handler's
            # read raises that; ending the body too keeps aiohttp from reading on after the answer
            # and logging the same error with a traceback.
            self._body = None
            body.feed_eof()
            self.close()

    def _head_deadline(self) -> None:
        self._head_timer = None
        started = self._head_started
        transport = self.transport
        if started is None or transport is None or self._force_close:
            return
        deadline = started + self._edge.header_timeout
        if self._loop.time() < deadline:
            self._head_timer = self._loop.call_at(deadline, self._head_deadline)
            return
        self._edge.header_timeouts.inc()
        anthropic = is_messages_path(head_path(self._head_bytes))
        transport.write(self._edge.headers_too_slow_anthropic if anthropic else self._edge.headers_too_slow)
        self.force_close()

    def _body_deadline(self) -> None:
        self._body_timer = None
        body = self._body
        if body is None or body.is_eof() or self.transport is None:
            self._body = None
            return
        deadline = self._body_started + self._edge.body_timeout
        if self._loop.time() < deadline:
            self._body_timer = self._loop.call_at(deadline, self._body_deadline)
            return
        self._edge.body_timeouts.inc()
        timeout = self._edge.body_timeout
        self._fail_body(
            body,
            RequestTimeout(f"The request body was not received within {timeout:g} seconds.", headers=_CLOSE),
        )

    def _fail_body(self, body: StreamReader, error: GatewayError) -> None:
        """The handler's read of `body` raises `error`; nothing more is read from this connection."""
        self._body = None
        body.set_exception(error)
        # Ended too, so that aiohttp does not linger reading the rest after the handler's answer.
        body.feed_eof()
        self.close()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's answer to a request its parser refused (400), to a handler that raised (500) or
        timed out (504): here in the shape of the door the request was for (a parser's refusal has no
        parsed path, so it is read from the head's first bytes), and only a bug's is logged above
        debug level."""
        error = protocol_error(status, exc, self.max_field_size, self.max_headers)
        path = request.path
        if isinstance(exc, HttpProcessingError):
            path = head_path(self._head_bytes)
            metrics.HTTP_PROTOCOL_ERRORS.labels(str(error.kind.http_status)).inc()
            logger.debug("refused a malformed request from %s: %s", request.remote, _reason(exc))
        elif status == 500:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
        if request.writer.output_size > 0:
            # Part of another answer is out already: the connection cannot carry this one.
            raise ConnectionError(
                "Response is sent already, cannot send another response with the error message"
            )
        response = refusal_response(path, error)
        response.force_close()
        return response


class _EdgeServer(web.Server):
    """aiohttp's Server (the protocol factory a site listens with), making EdgeRequestHandlers."""

    def __init__(self, edge: EdgeState, built: web.Server) -> None:
        super().__init__(
            built.request_handler,
            request_factory=built.request_factory,
            handler_cancellation=built.handler_cancellation,
            loop=built._loop,
            **built._kwargs,
        )
        self.edge = edge

    def __call__(self) -> RequestHandler:
        return EdgeRequestHandler(self, self.edge, loop=self._loop, **self._kwargs)


class EdgeAppRunner(web.AppRunner):
    """`web.AppRunner` whose connections are EdgeRequestHandlers under `settings`."""

    __slots__ = ("_edge",)

    def __init__(self, app: web.Application, settings: EdgeSettings, **kwargs: Any) -> None:
        super().__init__(app, **settings.aiohttp_options(), **kwargs)
        self._edge = EdgeState(settings)

    @property
    def max_connections(self) -> int:
        return self._edge.max_connections

    async def _make_server(self) -> web.Server:
        # aiohttp's own set-up (the app's startup, its handler arguments), then our protocol factory.
        return _EdgeServer(self._edge, await super()._make_server())
