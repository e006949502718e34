"""MessagesService: the Anthropic Messages API, unary, streamed and count_tokens, for every model.

Not a second pipeline: each call is translated into the internal chat request
(`siraya/router/codec/messages_to_chat.py`) and goes through the gateway's own `chat` /
`stream_chat`, so keys, credits, limits, routing, fallbacks, metering and the ledger all apply as
they do on /v1/chat/completions. The reply and the chunks are translated back
(`messages_from_chat.py`), the chunks into Anthropic's exact event sequence.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from server.errors import InvalidRequest, UpstreamError
from server.gateway import Gateway
from server.services.base import call_context, streaming_rpc, unary_rpc
from server.services.response_headers import send_response_headers
from siraya.router.codec.errors import CodecError
from siraya.router.codec.messages_from_chat import (
    MessageStreamTranslator,
    UntranslatableReply,
    message_from_chat,
)
from siraya.router.codec.messages_to_chat import to_chat_params
from siraya.router.codec.messages_tokens import estimate_input_tokens
from siraya.router.v1 import chat_pb2, messages_pb2, messages_pb2_grpc

__all__ = ["MessagesServicer"]


def _chat_params(params: messages_pb2.MessageParams) -> chat_pb2.ChatCompletionParams:
    if not params.HasField("max_tokens"):
        raise InvalidRequest(
            "max_tokens: Field required", param="max_tokens", code="missing_required_parameter"
        )
    try:
        return to_chat_params(params)
    except CodecError as error:
        raise InvalidRequest(error.message, param=error.param, code=error.code) from None


def _untranslatable(provider: str, error: UntranslatableReply) -> UpstreamError:
    return UpstreamError(f"Provider '{provider}' returned a reply that cannot be sent as a Message: {error}.")


class MessagesServicer(messages_pb2_grpc.MessagesServiceServicer):
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    @unary_rpc
    async def CreateMessage(
        self, request: messages_pb2.CreateMessageRequest, context: grpc.aio.ServicerContext
    ) -> messages_pb2.CreateMessageResponse:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization)
        completion = await self._gateway.chat(_chat_params(request.params), key, ctx)
        try:
            message = message_from_chat(completion)
        except UntranslatableReply as error:
            raise _untranslatable(completion.provider, error) from None
        await send_response_headers(context, ctx)
        return messages_pb2.CreateMessageResponse(message=message)

    @streaming_rpc
    async def StreamMessage(
        self, request: messages_pb2.StreamMessageRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[messages_pb2.StreamMessageResponse]:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization)
        params = _chat_params(request.params)
        # message_delta carries the usage, so the upstream must send it.
        params.stream_options.include_usage = True
        translator = MessageStreamTranslator(estimate_input_tokens(request.params))
        async for chunk in self._gateway.stream_chat(params, key, ctx):
            if not translator.started:
                await send_response_headers(context, ctx)
            for event in translator.feed(chunk):
                yield messages_pb2.StreamMessageResponse(event=event)
        for event in translator.finish():
            yield messages_pb2.StreamMessageResponse(event=event)

    @unary_rpc
    async def CountTokens(
        self, request: messages_pb2.CountTokensRequest, context: grpc.aio.ServicerContext
    ) -> messages_pb2.CountTokensResponse:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization)
        # The model must exist and be allowed for the key, as for a real request; nothing is metered.
        entry = self._gateway.model_for(request.params.model, "chat", key)
        ctx.outcome.model = entry.id
        return messages_pb2.CountTokensResponse(input_tokens=estimate_input_tokens(request.params))
