"""ResponsesService: the Responses API, unary and server-streaming typed events, and stored responses."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from server.gateway import Gateway
from server.services.base import call_context, streaming_rpc, unary_rpc
from server.services.response_headers import send_response_headers
from server.stored_responses import ResponseState, response_not_found
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

    def _state(self, response_id: str) -> ResponseState:
        state = self._gateway.state
        if state is None:
            raise response_not_found(response_id)
        return state

    @unary_rpc
    async def GetResponse(
        self, request: responses_pb2.GetResponseRequest, context: grpc.aio.ServicerContext
    ) -> responses_pb2.GetResponseResponse:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization, ctx)
        response = await self._state(request.id).get(request.id, key)
        return responses_pb2.GetResponseResponse(response=response)

    @unary_rpc
    async def DeleteResponse(
        self, request: responses_pb2.DeleteResponseRequest, context: grpc.aio.ServicerContext
    ) -> responses_pb2.DeleteResponseResponse:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization, ctx)
        await self._state(request.id).delete(request.id, key)
        return responses_pb2.DeleteResponseResponse(id=request.id, deleted=True)

    @unary_rpc
    async def ListInputItems(
        self, request: responses_pb2.ListInputItemsRequest, context: grpc.aio.ServicerContext
    ) -> responses_pb2.ListInputItemsResponse:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization, ctx)
        has = request.HasField
        page = await self._state(request.id).input_items(
            request.id,
            key,
            limit=request.limit if has("limit") else None,
            order=request.order if has("order") else None,
            after=request.after if has("after") else None,
        )
        reply = responses_pb2.ListInputItemsResponse(data=page.data, has_more=page.has_more)
        if page.data:
            reply.first_id = page.data[0].id
            reply.last_id = page.data[-1].id
        return reply

    @unary_rpc
    async def CancelResponse(
        self, request: responses_pb2.CancelResponseRequest, context: grpc.aio.ServicerContext
    ) -> responses_pb2.CancelResponseResponse:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization, ctx)
        background = self._gateway.background
        if background is None:
            raise response_not_found(request.id)
        return responses_pb2.CancelResponseResponse(response=await background.cancel(request.id, key))

    @streaming_rpc
    async def WatchResponse(
        self, request: responses_pb2.WatchResponseRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[responses_pb2.StreamResponseResponse]:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization, ctx)
        background = self._gateway.background
        if background is None:
            raise response_not_found(request.id)
        after = request.starting_after if request.HasField("starting_after") else None
        async for event in background.watch(request.id, key, after):
            yield responses_pb2.StreamResponseResponse(event=event)
