"""ChatService: chat completions, unary and server-streaming."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import orjson

from server.gateway import Gateway
from server.services.base import call_context, streaming_rpc, unary_rpc
from server.services.response_headers import send_response_headers
from siraya.router.codec.fields import JsonObject
from siraya.router.codec.validate import check_chat_params
from siraya.router.v1 import chat_pb2, chat_pb2_grpc


class ChatServicer(chat_pb2_grpc.ChatServiceServicer):
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    @unary_rpc
    async def CreateChatCompletion(
        self, request: chat_pb2.CreateChatCompletionRequest, context: grpc.aio.ServicerContext
    ) -> chat_pb2.CreateChatCompletionResponse:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization, ctx)
        check_chat_params(request.params)
        if request.openai_json:
            answer = await self._gateway.chat_json(request.params, key, ctx)
            await send_response_headers(context, ctx)
            return chat_pb2.CreateChatCompletionResponse(
                completion_json=orjson.dumps(answer), provider=answer["provider"]
            )
        completion = await self._gateway.chat(request.params, key, ctx)
        await send_response_headers(context, ctx)
        return chat_pb2.CreateChatCompletionResponse(completion=completion)

    @streaming_rpc
    async def StreamChatCompletion(
        self, request: chat_pb2.StreamChatCompletionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[chat_pb2.StreamChatCompletionResponse]:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization, ctx)
        check_chat_params(request.params)
        # One loop for both forms: each layer here is paid again for every chunk.
        if request.openai_json:
            chunks: AsyncIterator[Any] = self._gateway.stream_chat_json(request.params, key, ctx)
            reply: Callable[[Any], chat_pb2.StreamChatCompletionResponse] = _json_reply
        else:
            chunks = self._gateway.stream_chat(request.params, key, ctx)
            reply = _proto_reply
        first = True
        async for chunk in chunks:
            if first:
                first = False
                await send_response_headers(context, ctx)
            yield reply(chunk)


def _proto_reply(chunk: chat_pb2.ChatCompletionChunk) -> chat_pb2.StreamChatCompletionResponse:
    return chat_pb2.StreamChatCompletionResponse(chunk=chunk)


def _json_reply(chunk: JsonObject) -> chat_pb2.StreamChatCompletionResponse:
    return chat_pb2.StreamChatCompletionResponse(chunk_json=orjson.dumps(chunk), provider=chunk["provider"])
