"""Every failure the bridge sees becomes OpenAI's error envelope with the status from the table."""

from __future__ import annotations

import math

import grpc
import orjson
from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError, DecompressSizeError

from server.errors import GatewayError, InvalidRequest
from server.rpc_status import from_rpc_error
from siraya.router.codec.errors import CodecError


def as_gateway_error(error: Exception) -> GatewayError:
    if isinstance(error, GatewayError):
        return error
    if isinstance(error, CodecError):
        return InvalidRequest(error.message, param=error.param, code=error.code)
    if isinstance(error, grpc.aio.AioRpcError):
        return from_rpc_error(error)
    raise TypeError(f"not a gateway failure: {type(error).__name__}")


# The rest of a body that broke is not read: the connection closes after the answer.
_CLOSE = {"connection": "close"}


def payload_error(error: web.RequestPayloadError) -> InvalidRequest:
    """A body aiohttp could not read: its Content-Encoding did not decode, it decoded past the size
    limit, or its framing broke (the parser's own error is the cause)."""
    cause = error.__cause__
    if isinstance(cause, DecompressSizeError):
        return InvalidRequest(
            "The request body decompresses to more than this gateway accepts.",
            code="request_too_large",
            headers=_CLOSE,
        )
    if isinstance(cause, ContentEncodingError):
        return InvalidRequest(
            "The request body could not be decoded with the Content-Encoding it was sent with.",
            code="invalid_body_encoding",
            headers=_CLOSE,
        )
    return InvalidRequest(
        "The request body is not valid HTTP/1.1.", code="invalid_http_request", headers=_CLOSE
    )


def error_response(error: GatewayError, request_id: str | None = None) -> web.Response:
    headers: dict[str, str] = dict(error.headers) if error.headers else {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    if request_id:
        headers["X-Request-Id"] = request_id
    return web.Response(
        status=error.kind.http_status,
        body=orjson.dumps(error.envelope()),
        content_type="application/json",
        headers=headers,
    )


def error_event(error: GatewayError, _last_reply: object = None) -> bytes:
    """The final SSE event of a chat stream that failed after its first chunk."""
    return b"data: " + orjson.dumps(error.envelope()) + b"\n\n"
