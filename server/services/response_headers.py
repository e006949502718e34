"""Response headers the core set for a request (x-ratelimit-*), sent to the caller as initial metadata.

The bridge copies them into the HTTP response; a gRPC client reads them with `initial_metadata()`.
"""

from __future__ import annotations

import grpc

from server.providers.base import RequestContext


async def send_response_headers(context: grpc.aio.ServicerContext, ctx: RequestContext) -> None:
    if ctx.response_headers:
        await context.send_initial_metadata(tuple(ctx.response_headers.items()))
