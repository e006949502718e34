"""The gateway core: authenticate, route, call the provider, and stamp what served the request.

It knows neither gRPC nor HTTP: servicers call it with protos and a RequestContext. `Gateway` holds
what a request needs (catalogue, providers, keys, metering, routing) and joins the endpoints, which
are mixins, one module per kind: chat and Anthropic Messages (`server/gateway_chat.py`), Responses
(`gateway_responses.py`), embeddings (`gateway_embeddings.py`), images and videos
(`gateway_media.py`). Each takes the one unary path (`_unary`) or the one stream path (`_stream`)
of `server/gateway_pipeline.py`.
"""

from __future__ import annotations

from server.accounts.in_flight import InFlightLimit
from server.accounts.keys import KeyManager, KeyRecord
from server.accounts.metering import Metering
from server.accounts.sqlite_store import SqliteStore
from server.background_responses import BackgroundResponses
from server.errors import ModelNotFound
from server.gateway_chat import ChatEndpoints
from server.gateway_embeddings import EmbeddingEndpoints
from server.gateway_media import MediaEndpoints
from server.gateway_responses import ResponseEndpoints
from server.model_access import may_use
from server.providers.base import Provider, RequestContext
from server.response_cache.stage import ResponseCache
from server.routing.catalogue import Catalogue, CatalogueEntry, entry_to_proto
from server.routing.dispatch import Dispatcher
from server.stored_responses import ResponseState
from siraya.router.v1 import models_pb2


class Gateway(ChatEndpoints, ResponseEndpoints, EmbeddingEndpoints, MediaEndpoints):
    def __init__(
        self,
        catalogue: Catalogue,
        providers: dict[str, Provider],
        keys: KeyManager,
        store: SqliteStore,
        *,
        dispatcher: Dispatcher | None = None,
        metering: Metering | None = None,
        in_flight: InFlightLimit | None = None,
        state: ResponseState | None = None,
        background: BackgroundResponses | None = None,
        cache: ResponseCache | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.providers = providers
        self.keys = keys
        self.store = store
        self.dispatcher = dispatcher or Dispatcher(providers)
        self.metering = metering or Metering()
        # Requests per key in flight (server.max_in_flight_per_key), held from admission to the end.
        self.in_flight = in_flight or InFlightLimit()
        self.state = state
        self.background = background
        self.cache = cache
        if cache is not None:
            cache.embedder = self._cache_embedding

    async def close(self) -> None:
        if self.background is not None:
            await self.background.close()
        for provider in self.providers.values():
            await provider.close()
        await self.metering.close()
        await self.dispatcher.close()
        if self.cache is not None:
            await self.cache.close()
        self.store.close()

    async def authenticate(self, authorization: str | None, ctx: RequestContext | None = None) -> KeyRecord:
        """The caller's key; it names the request in `ctx` from here on (logs, spans), whatever fails next."""
        key = await self.keys.authenticate(authorization)
        if ctx is not None:
            ctx.key_id = key.id
        return key

    def model_for(self, model: str, kind: str, key: KeyRecord) -> CatalogueEntry:
        """The entry `key` may call `model` as: 404 when unknown, 403 when the key may not use it."""
        return self._entry(model, kind, key)

    # models

    def list_models(self, key: KeyRecord | None = None) -> list[models_pb2.Model]:
        """The catalogue, or for a key limited to some models, only those: what it lists, it may use."""
        return [
            entry_to_proto(entry) for entry in self.catalogue.entries() if key is None or may_use(key, entry)
        ]

    def get_model(self, model_id: str, key: KeyRecord | None = None) -> models_pb2.Model:
        entry = self.catalogue.get(model_id)
        if key is not None and not may_use(key, entry):
            raise ModelNotFound(model_id)
        return entry_to_proto(entry)
