"""ResponsesService: the Responses API, unary and server-streaming typed events."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from server.gateway import Gateway
from server.services.base import call_context, streaming_rpc, unary_rpc
from server.services.response_headers import send_response_headers
from siraya.router.codec.validate import check_response_params
from siraya.router.v1 import responses_pb2, responses_pb2_grpc


class ResponsesServicer(responses_pb2_grpc.ResponsesServiceServicer):
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    @unary_rpc
    async def CreateResponse(
        self, request: responses_pb2.CreateResponseRequest, context: grpc.aio.ServicerContext
    ) -> responses_pb2.CreateResponseResponse:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization, ctx)
        check_response_params(request.params)
        response = await self._gateway.respond(request.params, key, ctx)
        await send_response_headers(context, ctx)
        return responses_pb2.CreateResponseResponse(response=response)

    @streaming_rpc
    async def StreamResponse(
        self, request: responses_pb2.StreamResponseRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[responses_pb2.StreamResponseResponse]:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization, ctx)
        check_response_params(request.params)
        first = True
        async for event in self._gateway.stream_response(request.params, key, ctx):
            if first:
                first = False
                await send_response_headers(context, ctx)
            yield responses_pb2.StreamResponseResponse(event=event)
