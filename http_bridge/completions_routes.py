"""OpenAI's legacy completions over HTTP: POST /v1/completions, unary, or with `"stream": true` an SSE
stream of `text_completion` chunks ended by `data: [DONE]`.

The body becomes `CompletionParams` (siraya/router/codec/completions.py) and the CompletionsService
answers it through the chat pipeline. Errors are OpenAI's envelope, as on every OpenAI route; a
failure after the first chunk is one final `data:` event with the error, then the stream ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from http_bridge.call_headers import unary
from http_bridge.errors import error_event
from http_bridge.observe import RPC_CALLED
from http_bridge.sse import relay_stream
from server.errors import AuthenticationFailed, GatewayError
from siraya.router.codec import completions as completions_codec
from siraya.router.codec.errors import CodecError
from siraya.router.v1 import completions_pb2

__all__ = ["add_completions_routes"]

PROVIDER_HEADER = "x-siraya-provider"
_JSON = "application/json"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _chunk_frame(reply: completions_pb2.StreamCompletionResponse) -> bytes:
    return b"data: " + completions_codec.encode_completion(reply.chunk) + b"\n\n"


def _provider_header(reply: completions_pb2.StreamCompletionResponse) -> dict[str, str]:
    provider = reply.chunk.provider
    return {PROVIDER_HEADER: provider} if provider else {}


def add_completions_routes(
    app: web.Application,
    stubs_key: Any,
    read_json: Callable[[web.Request], Awaitable[dict[str, Any]]],
    call_metadata: Callable[[web.Request], list[tuple[str, str]]],
    request_id_of: Callable[[web.Request], str],
) -> None:
    """Register the route; the bridge passes its own helpers so every route shares one request path."""

    def key_first(handler: Handler) -> Handler:
        """A body refused before its call is answered 401 first when the key is missing or unknown,
        as on the bridge's other keyed paths: nobody without a key learns how the API validates."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except (GatewayError, CodecError) as refused:
                authenticate = request.app[stubs_key].authenticate
                if (
                    request.get(RPC_CALLED)
                    or isinstance(refused, AuthenticationFailed)
                    or authenticate is None
                ):
                    raise
                await authenticate(request.headers.get("Authorization"))
                raise

        return guarded

    async def create_completion(request: web.Request) -> web.StreamResponse:
        body = await read_json(request)
        params = completions_codec.decode_completion_request(body)
        stub = request.app[stubs_key].completions
        metadata = call_metadata(request)
        if body.get("stream") is True:
            call = stub.StreamCompletion(
                completions_pb2.StreamCompletionRequest(params=params), metadata=metadata
            )
            return await relay_stream(
                request,
                call,
                _chunk_frame,
                error_event,
                request_id_of(request),
                first_headers=_provider_header,
            )
        reply, headers = await unary(
            stub.CreateCompletion(completions_pb2.CreateCompletionRequest(params=params), metadata=metadata)
        )
        headers["X-Request-Id"] = request_id_of(request)
        if reply.completion.provider:
            headers[PROVIDER_HEADER] = reply.completion.provider
        return web.Response(
            body=completions_codec.encode_completion(reply.completion), content_type=_JSON, headers=headers
        )

    app.router.add_post("/v1/completions", key_first(create_completion))
