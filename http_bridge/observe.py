"""The bridge's operational side: /metrics, refusing new requests while draining, and counting what
is in flight.

Requests that reach a gRPC service are measured and logged there (server/observability/calls.py),
where the model, provider and tokens are known. The few that end in the bridge itself (a body that
is not JSON, an unknown URL) are measured and logged here, so that every request gets exactly one
access line and one count.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from http_bridge.refusals import refusal_response
from http_bridge.request_ids import client_request_id_of, request_id_of
from http_bridge.request_keys import RPC_CALLED
from server.errors import NoAvailableProvider
from server.observability import metrics
from server.observability.logs import ACCESS_LOG

__all__ = ["BRIDGE_STATE", "RPC_CALLED", "BridgeState", "install", "metrics_handler"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Probes and scrapes are neither refused while draining nor logged: they run every few seconds.
UNOBSERVED_PATHS = frozenset({"/health/live", "/health/ready", "/metrics"})


class BridgeState:
    """Whether the bridge takes new requests, and how many it is serving."""

    def __init__(self) -> None:
        self.draining = False
        self.in_flight = 0


BRIDGE_STATE = web.AppKey("bridge_state", BridgeState)


async def metrics_handler(request: web.Request) -> web.StreamResponse:
    return web.Response(body=metrics.exposition(), headers={"Content-Type": metrics.CONTENT_TYPE})


def _refuse(request: web.Request) -> web.StreamResponse:
    error = NoAvailableProvider(
        "The gateway is shutting down; retry the request.", code="server_shutting_down"
    )
    response = refusal_response(request.path, error, request_id_of(request))
    response.headers["Connection"] = "close"
    return response


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in UNOBSERVED_PATHS:
        return await handler(request)
    state = request.app[BRIDGE_STATE]
    if state.draining:
        response = _refuse(request)
        _record_bridge_only(request, response.status, 0.0)
        return response
    started = time.monotonic()
    state.in_flight += 1
    try:
        response = await handler(request)
    finally:
        state.in_flight -= 1
    if not request.get(RPC_CALLED):
        _record_bridge_only(request, response.status, time.monotonic() - started)
    return response


def _record_bridge_only(request: web.Request, status: int, elapsed: float) -> None:
    resource = request.match_info.route.resource
    endpoint = resource.canonical if resource is not None else "unmatched"
    metrics.REQUESTS.labels(endpoint, "", "", metrics.status_class(status)).inc()
    metrics.REQUEST_SECONDS.labels(endpoint, "", "").observe(elapsed)
    if ACCESS_LOG.enabled:
        ACCESS_LOG.write(
            {
                "request_id": request_id_of(request),
                "client_request_id": client_request_id_of(request),
                "key_id": None,
                "endpoint": endpoint,
                "method": request.method,
                "status": status,
                "latency_ms": round(elapsed * 1000, 2),
            }
        )


def install(app: web.Application) -> BridgeState:
    """Add the middleware (outermost, so it sees final statuses) and GET /metrics to `app`."""
    state = BridgeState()
    app[BRIDGE_STATE] = state
    app.middlewares.insert(0, observe_middleware)
    app.router.add_get("/metrics", metrics_handler)
    return state
