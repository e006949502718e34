"""The Anthropic Messages API over HTTP: the front door's edge in the bridge.

POST /v1/messages                 unary, or an SSE stream of Anthropic's events with `"stream": true`
POST /v1/messages/count_tokens    {"input_tokens": n}, an estimate (siraya/router/codec/messages_tokens.py)

The bridge asks for Anthropic's JSON and sends the body as the client wrote it, so a Claude model on
an Anthropic upstream is relayed (server/providers/messages_relay.py) and any other is translated.

Auth is the gateway key, sent the way Anthropic's clients send theirs: `x-api-key`, or
`Authorization: Bearer` (the Anthropic SDK's `auth_token`, Claude Code's ANTHROPIC_AUTH_TOKEN).
`anthropic-version` is accepted (the gateway speaks 2023-06-01 to its upstreams whatever the
client sends) and `anthropic-beta` is passed on to the upstream. Every error is Anthropic's shape,
with Anthropic's status codes (`messages_errors.py`), including the ones decided before the call;
a caller without a valid key hears 401 before anything about its body (route_auth.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from aiohttp import web

from http_bridge.call_headers import unary
from http_bridge.errors import as_gateway_error, payload_error
from http_bridge.messages_errors import MESSAGES_PATH, anthropic_error_event, anthropic_error_response
from http_bridge.request_keys import RPC_CALLED
from http_bridge.route_auth import caller_refusal
from http_bridge.sse import relay_stream
from server.errors import AuthenticationFailed, GatewayError, InvalidRequest
from siraya.router.codec import messages as messages_codec
from siraya.router.codec.errors import CodecError
from siraya.router.codec.messages_request import decode_count_tokens_request, decode_message_request
from siraya.router.v1 import messages_pb2

__all__ = ["add_messages_routes"]

PROVIDER_HEADER = "x-siraya-provider"
BETA_HEADER = "anthropic-beta"
_JSON = "application/json"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _event_frame(reply: messages_pb2.StreamMessageResponse) -> bytes:
    return b"event: " + reply.event_type.encode() + b"\ndata: " + reply.event_json + b"\n\n"


def _first_headers(reply: messages_pb2.StreamMessageResponse) -> dict[str, str]:
    return {PROVIDER_HEADER: reply.provider} if reply.provider else {}


def add_messages_routes(
    app: web.Application, stubs_key: Any, read_json: Any, call_metadata: Any, request_id_of: Any
) -> None:
    """Register the routes; the bridge passes its own helpers so every route shares one request path."""

    def authorization(request: web.Request) -> str | None:
        """The caller's key as an Authorization value: Bearer, else Anthropic's `x-api-key`."""
        headers = request.headers
        value = headers.get("Authorization")
        if value is None:
            api_key = headers.get("x-api-key")
            if api_key is not None:
                value = f"Bearer {api_key}"
        return value

    def metadata(request: web.Request) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = call_metadata(request)
        headers = request.headers
        if "Authorization" not in headers:
            from_api_key = authorization(request)
            if from_api_key is not None:
                if not (from_api_key.isascii() and from_api_key.isprintable()):
                    # No key holds such bytes, and gRPC metadata cannot carry them.
                    raise AuthenticationFailed("Incorrect API key provided: it is not printable ASCII.")
                pairs.append(("authorization", from_api_key))
        beta = headers.get(BETA_HEADER)
        if beta is not None:
            if not (beta.isascii() and beta.isprintable()):
                raise InvalidRequest(f"The {BETA_HEADER} header must be printable ASCII.")
            pairs.append((BETA_HEADER, beta))
        return pairs

    def respond(
        request: web.Request, body: bytes, headers: dict[str, str], provider: str = ""
    ) -> web.Response:
        request_id = request_id_of(request)
        headers["X-Request-Id"] = request_id
        headers["request-id"] = request_id
        if provider:
            headers[PROVIDER_HEADER] = provider
        return web.Response(body=body, content_type=_JSON, headers=headers)

    def anthropic_errors(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except (GatewayError, CodecError, grpc.aio.AioRpcError) as error:
                failure = as_gateway_error(error)
            except web.RequestPayloadError as error:
                failure = payload_error(error)
            if not request.get(RPC_CALLED):
                stubs = request.app[stubs_key]
                failure = await caller_refusal(stubs, request.path, authorization(request), failure)
            return anthropic_error_response(failure, request_id_of(request))

        return guarded

    async def create_message(request: web.Request) -> web.StreamResponse:
        body = await read_json(request)
        params = decode_message_request(body)
        # The bytes read_json parsed (aiohttp keeps them): what an Anthropic upstream is relayed.
        raw = await request.read()
        stubs = request.app[stubs_key]
        stub = stubs.messages
        if stubs.serialized:
            # Over a real gRPC hop the body travels once: the params carry only the model (the
            # call's labels) and the servicer decodes the rest from the body again.
            params = messages_pb2.MessageParams(model=params.model)
        if body.get("stream") is True:
            streamed = messages_pb2.StreamMessageRequest(params=params, anthropic_json=True, body_json=raw)
            return await relay_stream(
                request,
                stub.StreamMessage(streamed, metadata=metadata(request)),
                _event_frame,
                anthropic_error_event,
                request_id_of(request),
                done=None,
                first_headers=_first_headers,
                refuse=anthropic_error_response,
            )
        unary_request = messages_pb2.CreateMessageRequest(params=params, anthropic_json=True, body_json=raw)
        reply, headers = await unary(stub.CreateMessage(unary_request, metadata=metadata(request)))
        return respond(request, reply.message_json, headers, reply.provider)

    async def count_tokens(request: web.Request) -> web.StreamResponse:
        params = decode_count_tokens_request(await read_json(request))
        reply, headers = await unary(
            request.app[stubs_key].messages.CountTokens(
                messages_pb2.CountTokensRequest(params=params), metadata=metadata(request)
            )
        )
        return respond(request, messages_codec.encode_count_tokens(reply.input_tokens), headers)

    app.router.add_post(MESSAGES_PATH, anthropic_errors(create_message))
    app.router.add_post(MESSAGES_PATH + "/count_tokens", anthropic_errors(count_tokens))
