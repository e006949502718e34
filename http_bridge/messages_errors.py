"""The gateway's errors in Anthropic's shape, for the Messages front door.

Anthropic answers `{"type": "error", "error": {"type", "message"}, "request_id"}` with its own
statuses. The gateway's one error table (server/errors.py) decides which error happened; this maps
each row onto the Anthropic status and type that means the same to an Anthropic client:

    gateway                           HTTP  Anthropic HTTP  error.type
    invalid_request_error             400   400             invalid_request_error
      code request_too_large          400   413             request_too_large
      method not allowed              405   405             invalid_request_error (Allow kept)
      request head too large          431   431             invalid_request_error
    authentication_error              401   401             authentication_error
    insufficient_credits              402   402             billing_error
    permission_error                  403   403             permission_error
    not found (unknown model, ...)    404   404             not_found_error
    timeout_error                     408   504             timeout_error
    rate_limit_error                  429   429             rate_limit_error (Retry-After kept)
    upstream_error                    502   500             api_error
      UpstreamOverloaded              502   529             overloaded_error (Retry-After kept)
    service_unavailable_error         503   529             overloaded_error
    server_error                      500   500             api_error

UpstreamOverloaded is the upstream saying it is overloaded (Anthropic's 529, an HTTP 503, Google's
UNAVAILABLE) or every deployment's circuit being open: an OpenAI client sees the table's 502, an
Anthropic client the 529 its SDK knows to retry.

A failure after a stream's first event is one `event: error` frame with the same body. Every path
of the Messages door (`is_messages_path`) answers in this shape, including the refusals the router
and the HTTP edge decide before any handler runs.
"""

from __future__ import annotations

import math

import orjson
from aiohttp import web

from server.errors import GatewayError, UpstreamOverloaded

__all__ = [
    "MESSAGES_PATH",
    "anthropic_error",
    "anthropic_error_event",
    "anthropic_error_response",
    "is_messages_path",
]

MESSAGES_PATH = "/v1/messages"
_UNDER_MESSAGES = MESSAGES_PATH + "/"

_TOO_LARGE = (413, "request_too_large")
_OVERLOADED = (529, "overloaded_error")
_FALLBACK = (500, "api_error")
_BY_STATUS: dict[int, tuple[int, str]] = {
    400: (400, "invalid_request_error"),
    401: (401, "authentication_error"),
    402: (402, "billing_error"),
    403: (403, "permission_error"),
    404: (404, "not_found_error"),
    405: (405, "invalid_request_error"),
    408: (504, "timeout_error"),
    429: (429, "rate_limit_error"),
    500: (500, "api_error"),
    502: (500, "api_error"),
    503: _OVERLOADED,
    431: (431, "invalid_request_error"),
}


def is_messages_path(path: str) -> bool:
    """Whether `path` belongs to the Messages door (whose every answer is Anthropic-shaped)."""
    return path == MESSAGES_PATH or path.startswith(_UNDER_MESSAGES)


def anthropic_error(error: GatewayError) -> tuple[int, str]:
    """(the HTTP status, Anthropic's error.type) for a gateway error."""
    if error.code == "request_too_large":
        return _TOO_LARGE
    if isinstance(error, UpstreamOverloaded):
        return _OVERLOADED
    return _BY_STATUS.get(error.kind.http_status, _FALLBACK)


def _body(error: GatewayError, error_type: str, request_id: str | None) -> bytes:
    return orjson.dumps(
        {"type": "error", "error": {"type": error_type, "message": error.message}, "request_id": request_id}
    )


def anthropic_error_response(error: GatewayError, request_id: str | None = None) -> web.Response:
    status, error_type = anthropic_error(error)
    headers: dict[str, str] = dict(error.headers) if error.headers else {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    if request_id:
        headers["X-Request-Id"] = request_id
        # Where Anthropic's SDKs read a reply's request id from.
        headers["request-id"] = request_id
    return web.Response(
        status=status,
        body=_body(error, error_type, request_id),
        content_type="application/json",
        headers=headers,
    )


def anthropic_error_event(error: GatewayError, _last_reply: object = None) -> bytes:
    """The final SSE frame of a stream that failed after its first event."""
    _, error_type = anthropic_error(error)
    payload = orjson.dumps({"type": "error", "error": {"type": error_type, "message": error.message}})
    return b"event: error\ndata: " + payload + b"\n\n"
