"""What every servicer shares: reading call metadata, observing each RPC, and turning core errors into
google.rpc.Status.

The `unary_rpc` and `streaming_rpc` decorators are the one place every RPC passes through, on the
gRPC server and through the in-process stub alike: they time it, record its metrics, access line and
span from `ctx.outcome` (server/observability/calls.py), count it in flight for drain and reload
(server/lifecycle.py), and refuse new work once the process drains. They also refuse request bytes
that were no valid protobuf (server/rpc_decoding.py), answer a broken request rule
(siraya/router/codec/validate.py) with INVALID_ARGUMENT, and anything unexpected with a generic
INTERNAL that names only the request id.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar, Token
from typing import Any, TypeVar

import grpc

from server.errors import GatewayError, InternalError, InvalidRequest, NoAvailableProvider
from server.lifecycle import ServingState
from server.observability.calls import CLIENT_CLOSED, CallObservation, rpc_info
from server.observability.ids import BRIDGE_TOKEN, client_request_id, new_request_id
from server.providers.base import RequestContext
from server.routing.timeouts import (
    FIRST_TOKEN_TIMEOUT_HEADER,
    IDLE_TIMEOUT_HEADER,
    TIMEOUT_HEADER,
    parse_timeout,
)
from server.rpc_decoding import UNDECODABLE, undecodable
from server.rpc_status import to_grpc_status
from server.services.response_headers import set_unary_response_headers
from siraya.router.codec.errors import CodecError

logger = logging.getLogger("siraya.server")

Request = TypeVar("Request")
Reply = TypeVar("Reply")
# anthropic-beta: an Anthropic client's beta features, for an Anthropic upstream (messages_routes.py).
FORWARDED_METADATA = ("traceparent", "tracestate", "anthropic-beta")
BRIDGE_TOKEN_METADATA = "x-siraya-bridge"
CLIENT_REQUEST_ID_METADATA = "x-client-request-id"
# The response cache's per-request directive (server/response_cache/); never forwarded upstream.
CACHE_METADATA = "x-siraya-cache"
SHUTTING_DOWN_CODE = "server_shutting_down"

# The (authorization, RequestContext) of the call in progress: the decorator reads the metadata once and
# sets it here; the servicer's own `call_context` gets that same context. Each RPC runs in its own task
# (gRPC's, or the bridge handler's for in-process calls), so a call never sees another's.
_CALL: ContextVar[tuple[str | None, RequestContext] | None] = ContextVar("siraya_call", default=None)


def read_metadata(context: grpc.aio.ServicerContext) -> tuple[str | None, RequestContext]:
    authorization: str | None = None
    request_id: str | None = None
    client_id: str | None = None
    from_bridge = False
    forward: dict[str, str] = {}
    requested: float | None = None
    first_token: float | None = None
    idle: float | None = None
    cache: str | None = None
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            authorization = value if isinstance(value, str) else value.decode()
        elif key == "x-request-id":
            request_id = value if isinstance(value, str) else None
        elif key == CLIENT_REQUEST_ID_METADATA:
            client_id = value if isinstance(value, str) else None
        elif key == BRIDGE_TOKEN_METADATA:
            from_bridge = value == BRIDGE_TOKEN
        elif key == CACHE_METADATA:
            cache = value if isinstance(value, str) else value.decode()
        elif key in FORWARDED_METADATA:
            forward[key] = value if isinstance(value, str) else value.decode()
        elif key == TIMEOUT_HEADER:
            requested = parse_timeout(value if isinstance(value, str) else value.decode())
        elif key == FIRST_TOKEN_TIMEOUT_HEADER:
            first_token = parse_timeout(value if isinstance(value, str) else value.decode())
        elif key == IDLE_TIMEOUT_HEADER:
            idle = parse_timeout(value if isinstance(value, str) else value.decode())
    response_headers: dict[str, str] | None = None
    if not (from_bridge and request_id):
        # A gRPC caller's own id is only a label: the ledger's identity is always ours, so that no
        # caller can merge or hide records by reusing one. The caller learns ours from the metadata.
        client_id = client_request_id(client_id or request_id)
        request_id = new_request_id()
        response_headers = {"x-request-id": request_id}
    forward["X-Request-Id"] = request_id
    if client_id is not None:
        forward["X-Client-Request-Id"] = client_id
    remaining = context.time_remaining()
    if requested is not None:
        remaining = requested if remaining is None else min(remaining, requested)
    deadline = time.monotonic() + remaining if remaining is not None else None
    return authorization, RequestContext(
        request_id=request_id,
        client_request_id=client_id,
        from_bridge=from_bridge,
        deadline=deadline,
        response_headers=response_headers,
        forward_headers=forward,
        first_token_timeout=first_token,
        idle_timeout=idle,
        cache_directive=cache,
    )


def call_context(context: grpc.aio.ServicerContext) -> tuple[str | None, RequestContext]:
    """(the authorization value, the RequestContext) from a call's metadata."""
    call = _CALL.get()
    return call if call is not None else read_metadata(context)


def shutting_down() -> GatewayError:
    return NoAvailableProvider("The gateway is shutting down; retry the request.", code=SHUTTING_DOWN_CODE)


def _as_gateway_error(error: Exception, method: str, request_id: str) -> GatewayError:
    if isinstance(error, GatewayError):
        return error
    if isinstance(error, CodecError):  # a bound or shape the params broke (siraya/router/codec)
        return InvalidRequest(error.message, param=error.param, code=error.code)
    logger.exception("unhandled error in %s (request %s)", method, request_id)
    # Never the exception's text: it can quote the request, a file path or an upstream's reply.
    return InternalError(
        f"The gateway failed to process the request (internal error, request id {request_id})."
    )


def _with_request_id(error: GatewayError, ctx: RequestContext) -> GatewayError:
    """Tell a gRPC caller the gateway's id of a failed call too (trailing metadata)."""
    minted = ctx.response_headers.get("x-request-id") if ctx.response_headers else None
    if minted is not None:
        error.headers = (
            {**error.headers, "x-request-id": minted} if error.headers else {"x-request-id": minted}
        )
    return error


def _requested_model(request: Any) -> str | None:
    return getattr(getattr(request, "params", None), "model", None) or None


class _Call:
    """The bookkeeping of one RPC between the decorator's entry and its end."""

    __slots__ = ("token", "state", "gateway", "observation", "request_id")

    def __init__(self, servicer: Any, rpc: Any, request: Any, context: grpc.aio.ServicerContext) -> None:
        call = read_metadata(context)
        self.token: Token[tuple[str | None, RequestContext] | None] = _CALL.set(call)
        self.request_id = call[1].request_id
        self.observation = CallObservation(rpc, call[1], _requested_model(request))
        self.state: ServingState | None = getattr(servicer, "_serving", None)
        self.gateway = getattr(servicer, "_gateway", None)
        if self.state is not None:
            self.state.enter(self.gateway)

    @property
    def draining(self) -> bool:
        return self.state is not None and self.state.draining

    def end(self) -> None:
        try:
            _CALL.reset(self.token)
        except ValueError:  # a stream closed from another task (aclose on a dropped generator)
            pass
        if self.state is not None:
            self.state.leave(self.gateway)


def _was_cut(stopped: BaseException, state: ServingState | None, task: asyncio.Task[Any]) -> bool:
    """Whether a stream was cancelled by the drain (not by its client going away)."""
    return isinstance(stopped, asyncio.CancelledError) and state is not None and state.was_cut(task)


def unary_rpc(
    method: Callable[[Any, Request, grpc.aio.ServicerContext], Awaitable[Reply]],
) -> Callable[[Any, Request, grpc.aio.ServicerContext], Awaitable[Reply]]:
    rpc = rpc_info(method.__name__, streaming=False)

    @functools.wraps(method)
    async def wrapper(self: Any, request: Request, context: grpc.aio.ServicerContext) -> Reply:
        call = _Call(self, rpc, request, context)
        try:
            if call.draining:
                raise shutting_down()
            if request is UNDECODABLE:
                raise undecodable()
            reply = await method(self, request, context)
        except asyncio.CancelledError:
            call.observation.finish(CLIENT_CLOSED, grpc.StatusCode.CANCELLED, "client_closed")
            raise
        except Exception as error:  # noqa: BLE001 - every failure becomes a Status
            failure = _as_gateway_error(error, method.__name__, call.request_id)
        else:
            set_unary_response_headers(context, call.observation.ctx)
            call.observation.finish(200, grpc.StatusCode.OK, None)
            return reply
        finally:
            call.end()
        call.observation.finish(failure.kind.http_status, failure.kind.grpc_code, failure.code)
        await context.abort_with_status(to_grpc_status(_with_request_id(failure, call.observation.ctx)))
        raise AssertionError("abort_with_status returned")  # pragma: no cover

    return wrapper


def streaming_rpc(
    method: Callable[[Any, Request, grpc.aio.ServicerContext], AsyncIterator[Reply]],
) -> Callable[[Any, Request, grpc.aio.ServicerContext], AsyncIterator[Reply]]:
    rpc = rpc_info(method.__name__, streaming=True)
    sent = rpc.sent

    @functools.wraps(method)
    async def wrapper(self: Any, request: Request, context: grpc.aio.ServicerContext) -> AsyncIterator[Reply]:
        call = _Call(self, rpc, request, context)
        count = 0
        task = asyncio.current_task()
        if call.state is not None:
            call.state.open_stream(task)
        try:
            if call.draining:
                raise shutting_down()
            if request is UNDECODABLE:
                raise undecodable()
            async for reply in method(self, request, context):
                count += 1
                yield reply
        except (asyncio.CancelledError, GeneratorExit) as stopped:
            if task is None or not _was_cut(stopped, call.state, task):
                call.observation.finish(CLIENT_CLOSED, grpc.StatusCode.CANCELLED, "client_closed")
                raise
            # The drain's grace ran out: end this stream with a final error instead of a cut connection.
            task.uncancel()
            failure = shutting_down()
        except Exception as error:  # noqa: BLE001 - every failure becomes a Status
            failure = _as_gateway_error(error, method.__name__, call.request_id)
        else:
            call.observation.finish(200, grpc.StatusCode.OK, None)
            return
        finally:
            # Counted once per stream: a counter update per message was 1.3 us of each chunk.
            if count:
                sent.inc(count)
            call.end()
            if call.state is not None:
                call.state.close_stream(task)
        call.observation.finish(failure.kind.http_status, failure.kind.grpc_code, failure.code)
        await context.abort_with_status(to_grpc_status(_with_request_id(failure, call.observation.ctx)))

    return wrapper
