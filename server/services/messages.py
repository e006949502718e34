"""MessagesService: the Anthropic Messages API, unary, streamed and count_tokens, for every model.

Not a second pipeline: each call is translated into the internal chat request
(`siraya/router/codec/messages_to_chat.py`) and goes through the gateway's own chat path, so keys,
credits, limits, routing, fallbacks, metering and the ledger all apply as they do on
/v1/chat/completions. A caller that wants the proto reply gets the chat reply translated back
(`messages_from_chat.py`), the chunks into Anthropic's exact event sequence. A caller that asks for
Anthropic's JSON (`anthropic_json`, as the HTTP bridge does) also gets the same-protocol relay lane:
an Anthropic upstream receives the client's own body and its reply comes back as sent
(server/providers/messages_relay.py); other upstreams are translated as for the proto.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import orjson

from server.chat_reply import chunk_as_proto
from server.errors import InvalidRequest, UpstreamError
from server.gateway import Gateway
from server.services.base import call_context, streaming_rpc, unary_rpc
from server.services.request_body import params_from_body
from server.services.response_headers import send_response_headers
from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import JsonObject
from siraya.router.codec.messages import message_request_dict
from siraya.router.codec.messages_from_chat import (
    MessageStreamTranslator,
    UntranslatableReply,
    message_from_chat,
)
from siraya.router.codec.messages_request import decode_message_request
from siraya.router.codec.messages_to_chat import to_chat_params
from siraya.router.codec.messages_tokens import estimate_input_tokens
from siraya.router.codec.routing import EXTRA_BODY_KEY, ROUTING_KEYS
from siraya.router.v1 import chat_pb2, messages_pb2, messages_pb2_grpc

__all__ = ["MessagesServicer"]


def _chat_params(params: messages_pb2.MessageParams) -> chat_pb2.ChatCompletionParams:
    if not params.HasField("max_tokens"):
        raise InvalidRequest(
            "max_tokens: Field required", param="max_tokens", code="missing_required_parameter"
        )
    if params.max_tokens < 1:
        raise InvalidRequest(
            "max_tokens: Input should be greater than or equal to 1",
            param="max_tokens",
            code="integer_below_min_value",
        )
    try:
        return to_chat_params(params)
    except CodecError as error:
        raise InvalidRequest(error.message, param=error.param, code=error.code) from None


def _params_of(
    request: messages_pb2.CreateMessageRequest | messages_pb2.StreamMessageRequest, from_bridge: bool
) -> messages_pb2.MessageParams:
    """The request's params. Over the loopback gRPC hop the bridge sends only the model in them (no
    messages, which every request has), beside the body it decoded them from: decoded here again."""
    params = request.params
    if not (from_bridge and request.body_json and not params.messages):
        return params
    return params_from_body(request.body_json, decode_message_request, "body_json")


def _relay_body(params: messages_pb2.MessageParams, body_json: bytes) -> JsonObject:
    """The body an Anthropic upstream is sent: the client's own, without the gateway's routing keys.

    A literal `extra_body` object is merged into it, as the chat codec merges one (its keys win).
    `model` and `stream` are set per attempt.
    """
    body: object = None
    if body_json:
        try:
            body = orjson.loads(body_json)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            raise InvalidRequest("body_json is not a JSON object.", param="body_json")
    else:
        body = message_request_dict(params)
    assert isinstance(body, dict)
    literal = body.pop(EXTRA_BODY_KEY, None)
    for key in ROUTING_KEYS:
        body.pop(key, None)
    if isinstance(literal, dict):
        body.update((key, value) for key, value in literal.items() if key not in ROUTING_KEYS)
    body.pop("stream", None)
    return body


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
        message_params = _params_of(request, ctx.from_bridge)
        params = _chat_params(message_params)
        if request.anthropic_json:
            body = _relay_body(message_params, request.body_json)
            answer = await self._gateway.message_json(params, body, key, ctx)
            return messages_pb2.CreateMessageResponse(
                message_json=orjson.dumps(answer), provider=answer["provider"]
            )
        completion = (await self._gateway.chat(params, key, ctx)).as_proto()
        try:
            message = message_from_chat(completion)
        except UntranslatableReply as error:
            raise _untranslatable(completion.provider, error) from None
        return messages_pb2.CreateMessageResponse(message=message)

    @streaming_rpc
    async def StreamMessage(
        self, request: messages_pb2.StreamMessageRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[messages_pb2.StreamMessageResponse]:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization)
        message_params = _params_of(request, ctx.from_bridge)
        params = _chat_params(message_params)
        # message_delta carries the usage, so the upstream must send it.
        params.stream_options.include_usage = True
        estimate = estimate_input_tokens(message_params)
        if request.anthropic_json:
            body = _relay_body(message_params, request.body_json)
            events = self._gateway.stream_message_json(params, body, key, ctx, estimate)
            first = True
            async for event in events:
                if first:
                    first = False
                    await send_response_headers(context, ctx)
                kind = event["type"]
                yield messages_pb2.StreamMessageResponse(
                    event_json=orjson.dumps(event),
                    event_type=kind,
                    provider=event["message"]["provider"] if kind == "message_start" else "",
                )
            return
        translator = MessageStreamTranslator(estimate)
        async for chunk in self._gateway.stream_chat(params, key, ctx):
            if not translator.started:
                await send_response_headers(context, ctx)
            for event in translator.feed(chunk_as_proto(chunk, ctx.outcome.provider or "")):
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
