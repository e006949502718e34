"""EmbeddingsService."""

from __future__ import annotations

import grpc

from server.gateway import Gateway
from server.services.base import call_context, unary_rpc
from siraya.router.codec.validate import check_embedding_params
from siraya.router.v1 import embeddings_pb2, embeddings_pb2_grpc


class EmbeddingsServicer(embeddings_pb2_grpc.EmbeddingsServiceServicer):
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    @unary_rpc
    async def CreateEmbedding(
        self, request: embeddings_pb2.CreateEmbeddingRequest, context: grpc.aio.ServicerContext
    ) -> embeddings_pb2.CreateEmbeddingResponse:
        authorization, ctx = call_context(context)
        key = await self._gateway.authenticate(authorization, ctx)
        check_embedding_params(request.params)
        result = await self._gateway.embed(request.params, key, ctx)
        return embeddings_pb2.CreateEmbeddingResponse(result=result)
