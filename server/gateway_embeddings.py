"""The gateway's embeddings endpoint, which also embeds texts for the response cache's semantic tier."""

from __future__ import annotations

from collections.abc import Sequence

from server.accounts.keys import KeyRecord
from server.gateway_pipeline import Pipeline
from server.gateway_usage import embedding_consumption, embedding_demand
from server.providers.base import RequestContext
from server.response_cache.stage import ProtoForm
from siraya.router.codec.bounds import check_embedding
from siraya.router.v1 import embeddings_pb2

_EMBEDDINGS = ProtoForm(embeddings_pb2.EmbeddingList)


class EmbeddingEndpoints(Pipeline):
    async def _cache_embedding(
        self, model: str, text: str, key: KeyRecord, ctx: RequestContext
    ) -> Sequence[float]:
        """A text's embedding for the response cache's semantic tier: an ordinary embeddings request
        of the same key (charged and in the ledger as such, under its own id)."""
        own = RequestContext(
            request_id=ctx.request_id + "-semantic",
            key_id=key.id,
            client_request_id=ctx.client_request_id,
            deadline=ctx.deadline,
            forward_headers=ctx.forward_headers,
        )
        result = await self.embed(embeddings_pb2.EmbeddingParams(model=model, text=text), key, own)
        return result.data[0].embedding if result.data else ()

    async def embed(
        self, params: embeddings_pb2.EmbeddingParams, key: KeyRecord, ctx: RequestContext
    ) -> embeddings_pb2.EmbeddingList:
        check_embedding(params)
        result, route, cost = await self._unary(
            "embedding",
            params.model,
            params.routing,
            embedding_demand(params),
            key,
            ctx,
            lambda route: route.provider.embed(params, route.deployment.upstream_model, ctx),
            embedding_consumption,
            _EMBEDDINGS,
        )
        result.model = route.entry.id
        result.provider = route.deployment.provider
        if cost is not None and result.HasField("usage"):
            result.usage.cost = cost
        return result
