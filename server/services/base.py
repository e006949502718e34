"""What every servicer shares: reading call metadata, and turning core errors into google.rpc.Status."""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from server.errors import GatewayError, InternalError
from server.providers.base import RequestContext
from server.rpc_status import to_grpc_status

logger = logging.getLogger("siraya.server")

Request = TypeVar("Request")
Reply = TypeVar("Reply")
FORWARDED_METADATA = ("traceparent", "tracestate")


def call_context(context: grpc.aio.ServicerContext) -> tuple[str | None, RequestContext]:
    """(the authorization value, the RequestContext) from a call's metadata."""
    authorization: str | None = None
    request_id: str | None = None
    forward: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            authorization = value if isinstance(value, str) else value.decode()
        elif key == "x-request-id":
            request_id = value if isinstance(value, str) else value.decode()
        elif key in FORWARDED_METADATA:
            forward[key] = value if isinstance(value, str) else value.decode()
    request_id = request_id or "req_" + secrets.token_hex(12)
    forward["X-Request-Id"] = request_id
    remaining = context.time_remaining()
    deadline = time.monotonic() + remaining if remaining is not None else None
    return authorization, RequestContext(request_id=request_id, deadline=deadline, forward_headers=forward)


def _as_gateway_error(error: Exception, method: str) -> GatewayError:
    if isinstance(error, GatewayError):
        return error
    logger.exception("unhandled error in %s", method)
    return InternalError("The gateway failed to process the request.")


def unary_rpc(
    method: Callable[[Any, Request, grpc.aio.ServicerContext], Awaitable[Reply]],
) -> Callable[[Any, Request, grpc.aio.ServicerContext], Awaitable[Reply]]:
    @functools.wraps(method)
    async def wrapper(self: Any, request: Request, context: grpc.aio.ServicerContext) -> Reply:
        try:
            return await method(self, request, context)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - every failure becomes a Status
            failure = _as_gateway_error(error, method.__name__)
        await context.abort_with_status(to_grpc_status(failure))
        raise AssertionError("abort_with_status returned")  # pragma: no cover

    return wrapper


def streaming_rpc(
    method: Callable[[Any, Request, grpc.aio.ServicerContext], AsyncIterator[Reply]],
) -> Callable[[Any, Request, grpc.aio.ServicerContext], AsyncIterator[Reply]]:
    @functools.wraps(method)
    async def wrapper(self: Any, request: Request, context: grpc.aio.ServicerContext) -> AsyncIterator[Reply]:
        try:
            async for reply in method(self, request, context):
                yield reply
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - every failure becomes a Status
            failure = _as_gateway_error(error, method.__name__)
        await context.abort_with_status(to_grpc_status(failure))

    return wrapper
