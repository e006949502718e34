"""ModelsService: the public catalogue. Listing needs a valid key, as OpenAI's does, and a key limited
to some models sees only those; the admin key sees the whole catalogue (the console's models page)."""

from __future__ import annotations

import grpc

from server.gateway import Gateway
from server.services.base import call_context, unary_rpc
from server.services.usage import admin_token, is_admin
from siraya.router.v1 import models_pb2, models_pb2_grpc


class ModelsServicer(models_pb2_grpc.ModelsServiceServicer):
    def __init__(self, gateway: Gateway, admin_key: str | None = None) -> None:
        self._gateway = gateway
        self._admin = admin_token(admin_key)

    @unary_rpc
    async def ListModels(
        self, request: models_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> models_pb2.ListModelsResponse:
        authorization, ctx = call_context(context)
        if is_admin(authorization, self._admin):
            return models_pb2.ListModelsResponse(data=self._gateway.list_models())
        key = await self._gateway.authenticate(authorization, ctx)
        return models_pb2.ListModelsResponse(data=self._gateway.list_models(key))

    @unary_rpc
    async def GetModel(
        self, request: models_pb2.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> models_pb2.GetModelResponse:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization, ctx)
        return models_pb2.GetModelResponse(model=self._gateway.get_model(request.id, key))
