"""ChatService: chat completions, unary and server-streaming.

The gateway has one path per RPC; the servicer picks the wire form the caller asked for: OpenAI's
JSON bytes with `openai_json` (what the HTTP bridge asks for), else the proto.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from server.chat_reply import chunk_as_json, chunk_as_proto
from server.gateway import Gateway
from server.providers.base import RequestContext
from server.services.base import call_context, streaming_rpc, unary_rpc
from server.services.request_body import params_from_body
from server.services.response_headers import send_response_headers
from siraya.router.codec.chat import decode_chat_request
from siraya.router.codec.validate import check_chat_params
from siraya.router.v1 import chat_pb2, chat_pb2_grpc

ChatRequest = chat_pb2.CreateChatCompletionRequest | chat_pb2.StreamChatCompletionRequest


class ChatServicer(chat_pb2_grpc.ChatServiceServicer):
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    @unary_rpc
    async def CreateChatCompletion(
        self, request: chat_pb2.CreateChatCompletionRequest, context: grpc.aio.ServicerContext
    ) -> chat_pb2.CreateChatCompletionResponse:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization, ctx)
        params = _params_of(request, ctx)
        answer = await self._gateway.chat(params, key, ctx, request.openai_body)
        if request.openai_json:
            return chat_pb2.CreateChatCompletionResponse(
                completion_json=answer.as_json(), provider=answer.provider
            )
        return chat_pb2.CreateChatCompletionResponse(completion=answer.as_proto())

    @streaming_rpc
    async def StreamChatCompletion(
        self, request: chat_pb2.StreamChatCompletionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[chat_pb2.StreamChatCompletionResponse]:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization, ctx)
        params = _params_of(request, ctx)
        chunks = self._gateway.stream_chat(params, key, ctx, request.openai_body)
        as_json = request.openai_json
        include_usage = params.stream_options.include_usage
        reply = chat_pb2.StreamChatCompletionResponse
        provider, first = "", True
        # One loop for both forms: each layer here is paid again for every chunk.
        async for chunk in chunks:
            if first:
                first = False
                provider = ctx.outcome.provider or ""
                await send_response_headers(context, ctx)
            if as_json:
                yield reply(
                    chunk_json=chunk if type(chunk) is bytes else chunk_as_json(chunk, include_usage),
                    provider=provider,
                )
            else:
                yield reply(chunk=chunk_as_proto(chunk, provider))


def _params_of(request: ChatRequest, ctx: RequestContext) -> chat_pb2.ChatCompletionParams:
    """The request's params, checked as REST checks them. With `openai_body`, what the gateway routes,
    meters and moderates must be what the upstream receives: the bridge decoded `params` from that
    same body; any other caller's `params` are decoded from its body here. Over the loopback gRPC hop
    the bridge sends only the model in `params` (no messages, which every request has): those are
    decoded from the body here too."""
    params = request.params
    if request.openai_body and not (ctx.from_bridge and params.messages):
        params = params_from_body(request.openai_body, decode_chat_request, "openai_body")
    check_chat_params(params)
    return params
