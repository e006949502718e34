"""The response cache as a stage of the gateway's pipeline.

`Gateway._unary` and `Gateway._stream` ask `ResponseCache.plan` once the model is resolved (and the
key allowed to use it: a revoked, expired or unknown key, or a model the key may not use, is refused
before any lookup). A request is cacheable when its model opts in (`cache: {ttl}`) or the request
does (`x-siraya-cache: ttl=60`), `x-siraya-cache: no-store` does not bypass it, and its answer is not
sampled (keys.py). For a cacheable request the plan's `hit` is looked up before the credit
reservation. A hit is still admitted (`Metering.admit_cache_hit`): it counts as one request against
the key's rate limit and passes moderation like any other, but it costs nothing, moves no credit,
never reaches an upstream, and is written to the ledger as `cache_hit` with what it saved. A miss
runs the pipeline as usual, and what the client was sent - the whole answer, or every stream item
in order - is kept after settlement, so a streamed hit replays a stream of the same shape (its
usage priced at zero).

Entries live in the calling key's cache namespace (`keys.cache_namespace_of`: its own id unless an
admin set one): keys that share a namespace share answers, and no other key ever sees them.

The optional semantic tier (semantic.py) serves a single-turn request whose exact key misses from a
remembered single-turn request of the same namespace, model and settings whose text embeds alike
(`cache.semantic: {embedding_model, threshold}`); the embedding is an ordinary embeddings request
of the key.
The answer carries `x-siraya-cache: hit` or `miss` (cacheable requests only).
"""

from __future__ import annotations

import hashlib
import logging
import struct
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

import orjson
from google.protobuf.message import Message

from server.accounts.keys import KeyRecord, cache_namespace_of
from server.accounts.metering import Consumption, Demand, Metering
from server.accounts.money import micros_to_usd
from server.config import GatewayConfig, ModelCacheConfig, SemanticCacheConfig
from server.errors import GatewayError
from server.observability import metrics
from server.providers.base import Provider, RequestContext
from server.response_cache.keys import cache_key, is_sampled, parse_directive
from server.response_cache.semantic import SemanticIndex, single_turn_text, template_key
from server.response_cache.stores import CacheStore, MemoryCacheStore, RedisCacheStore
from server.routing.catalogue import CatalogueEntry
from server.routing.route import Route

__all__ = [
    "CACHE_HEADER",
    "CacheLookup",
    "Form",
    "MessagesForm",
    "ProtoForm",
    "ResponseCache",
    "build_cache",
]

logger = logging.getLogger("siraya.cache")

CACHE_HEADER = "x-siraya-cache"
Item = TypeVar("Item")
M = TypeVar("M", bound=Message)
_LENGTH = struct.Struct(">I")
# (embedding model, text, key, ctx) -> the text's embedding: the gateway's own embeddings pipeline.
Embedder = Callable[[str, str, KeyRecord, RequestContext], Awaitable[Sequence[float]]]


class Form(Protocol[Item]):
    """How one kind of reply item is written to and read from the cache."""

    # Whether the semantic tier may serve it: its key must be the request's proto alone.
    semantic: bool

    @property
    def name(self) -> str:
        """Part of the cache key: answers of different forms never mix."""
        ...

    def encode(self, item: Item) -> bytes: ...

    def decode(self, data: bytes) -> Item: ...


class ProtoForm(Generic[M]):
    def __init__(self, message: type[M]) -> None:
        self.message = message
        self.name = message.DESCRIPTOR.full_name
        self.semantic = True

    def encode(self, item: M) -> bytes:
        return item.SerializeToString()

    def decode(self, data: bytes) -> M:
        return self.message.FromString(data)


# Fields of a Messages body that never change the answer (the model is keyed as its catalogue id).
_MESSAGES_IGNORED = ("model", "stream", "metadata")
_ANTHROPIC_BETA = "anthropic-beta"


class MessagesForm:
    """Anthropic's Message JSON (a reply or stream events), for one request.

    The key is the chat translation of the request and, through this form's name, a digest of the
    body as written and its `anthropic-beta`: an Anthropic upstream is sent that body, and fields
    the translation folds together (thinking budgets, say) still change its answer. The digest is
    taken only for a cacheable request, when the name is first read.
    """

    semantic = False

    def __init__(self, body: Mapping[str, Any], forward_headers: Mapping[str, str]) -> None:
        self._body = body
        self._beta = forward_headers.get(_ANTHROPIC_BETA)
        self._name: str | None = None

    @property
    def name(self) -> str:
        if self._name is None:
            kept = {key: value for key, value in self._body.items() if key not in _MESSAGES_IGNORED}
            digest = hashlib.blake2b(orjson.dumps(kept, option=orjson.OPT_SORT_KEYS), digest_size=16)
            digest.update(b"\x00" + (self._beta or "").encode())
            self._name = "messages/" + digest.hexdigest()
        return self._name

    def encode(self, item: Any) -> bytes:
        return orjson.dumps(item)

    def decode(self, data: bytes) -> Any:
        return orjson.loads(data)


class ResponseCache:
    def __init__(
        self,
        store: CacheStore,
        models: Mapping[str, ModelCacheConfig],
        providers: Mapping[str, Provider],
        metering: Metering,
        *,
        max_entry_bytes: int,
    ) -> None:
        self.store = store
        self._models = models
        self._providers = providers
        self._metering = metering
        self.max_entry_bytes = max_entry_bytes
        # Set by the gateway: how the semantic tier embeds a text.
        self.embedder: Embedder | None = None
        self.semantic_indexes = {
            model: SemanticIndex(config.semantic.max_entries)
            for model, config in models.items()
            if config.semantic is not None
        }

    def plan(
        self,
        entry: CatalogueEntry,
        demand: Demand,
        key: KeyRecord,
        ctx: RequestContext,
        form: Form[Any],
        streamed: bool,
    ) -> CacheLookup[Any] | None:
        """The lookup for a cacheable request; None (at the cost of a dict lookup) for any other."""
        params = demand.params
        raw = ctx.cache_directive
        config = self._models.get(entry.id)
        if raw is None and config is None:
            return None
        ttl = None if config is None else config.ttl
        if raw is not None:
            directive = parse_directive(raw)
            if directive.bypass:
                return None
            ttl = directive.ttl
        if ttl is None or params is None:
            return None
        if is_sampled(params) and not (config is not None and config.allow_sampled):
            return None
        shape = f"{'stream' if streamed else 'whole'}/{form.name}"
        namespace = cache_namespace_of(key)
        lookup = CacheLookup(self, cache_key(namespace, shape, entry.id, params), ttl, form, entry, demand)
        if config is not None and config.semantic is not None and form.semantic:
            text = single_turn_text(params)
            if text is not None:
                lookup.semantic = _Semantic(
                    config.semantic, template_key(namespace, shape, entry.id, params), text
                )
        return lookup

    def _route(self, entry: CatalogueEntry, deployment_key: str) -> Route | None:
        for deployment in entry.deployments:
            if deployment.key == deployment_key:
                provider = self._providers.get(deployment.provider)
                return None if provider is None else Route(entry, deployment, provider)
        return None  # the configuration changed since: not the same answer any more

    def _mark(self, ctx: RequestContext, result: str) -> None:
        if ctx.response_headers is None:
            ctx.response_headers = {CACHE_HEADER: result}
        else:
            ctx.response_headers[CACHE_HEADER] = result

    async def close(self) -> None:
        await self.store.close()


class CacheLookup(Generic[Item]):
    """One cacheable request: its hit, or the items it sends, kept at its end."""

    __slots__ = ("cache", "key", "ttl", "form", "entry", "demand", "semantic", "_items", "_size")

    def __init__(
        self,
        cache: ResponseCache,
        key: str,
        ttl: float,
        form: Form[Item],
        entry: CatalogueEntry,
        demand: Demand,
    ) -> None:
        self.cache = cache
        self.key = key
        self.ttl = ttl
        self.form = form
        self.entry = entry
        self.demand = demand
        self.semantic: _Semantic | None = None
        self._items: list[bytes] | None = []
        self._size = 0

    async def hit(self, key: KeyRecord, ctx: RequestContext) -> tuple[list[Item], Route, Consumption] | None:
        """The cached items, the route that first served them and their usage; None on a miss.

        A hit is admitted before it is answered: the key's rate limit or moderation may refuse it
        (429, 403), as they would a miss.
        """
        cache = self.cache
        data = await self._get(self.key)
        result = "hit"
        if data is None and self.semantic is not None:
            data = await self._similar(key, ctx)
            result = "semantic_hit"
        found = None if data is None else _decode(data)
        route = None if found is None else cache._route(self.entry, found[0])
        if found is None or route is None:
            metrics.CACHE_LOOKUPS.labels(self.entry.id, "miss").inc()
            cache._mark(ctx, "miss")
            return None
        _, consumption, blobs = found
        items = [self.form.decode(blob) for blob in blobs]
        saved = await cache._metering.admit_cache_hit(
            key, self.entry, self.demand, route.deployment, consumption, ctx
        )
        metrics.CACHE_LOOKUPS.labels(self.entry.id, result).inc()
        if saved:
            metrics.CACHE_SAVED.labels(self.entry.id).inc(micros_to_usd(saved))
        cache._mark(ctx, "hit")
        return items, route, consumption

    async def _get(self, key: str) -> bytes | None:
        try:
            return await self.cache.store.get(key)
        except Exception:
            logger.warning("response cache lookup failed; answering from the upstream", exc_info=True)
            return None

    async def _similar(self, key: KeyRecord, ctx: RequestContext) -> bytes | None:
        """The answer to a remembered single-turn request that means the same, if there is one."""
        semantic, embedder = self.semantic, self.cache.embedder
        index = self.cache.semantic_indexes.get(self.entry.id)
        if semantic is None or embedder is None or index is None:
            return None
        try:
            semantic.vector = await embedder(semantic.config.embedding_model, semantic.text, key, ctx)
        except GatewayError as error:
            logger.warning("the semantic cache could not embed a request: %s", error.message)
            return None
        answer = index.nearest(semantic.template, semantic.vector, semantic.config.threshold)
        return None if answer is None else await self._get(answer)

    def add(self, item: Item) -> None:
        """One item as the client was sent it (before later ones); an answer too big is dropped."""
        if self._items is None:
            return
        blob = self.form.encode(item)
        self._size += len(blob) + _LENGTH.size
        if self._size > self.cache.max_entry_bytes:
            self._items = None
        else:
            self._items.append(blob)

    async def keep(self, route: Route, consumption: Consumption) -> None:
        if not self._items:
            return
        data = _encode(route.deployment.key, consumption, self._items)
        self._items = None
        store = self.cache.store
        try:
            await store.put(self.key, data, self.ttl)
        except Exception:
            logger.warning("could not write to the response cache", exc_info=True)
            return
        metrics.CACHE_STORED_BYTES.inc(len(data))
        semantic = self.semantic
        index = self.cache.semantic_indexes.get(self.entry.id)
        if semantic is not None and semantic.vector is not None and index is not None:
            index.add(semantic.template, semantic.vector, self.key)
        size = store.size_bytes()
        if size is not None:
            metrics.CACHE_MEMORY_BYTES.set(size)


class _Semantic:
    """A single-turn request's part in the semantic tier: its template, text and (once) embedding."""

    __slots__ = ("config", "template", "text", "vector")

    def __init__(self, config: SemanticCacheConfig, template: str, text: str) -> None:
        self.config = config
        self.template = template
        self.text = text
        self.vector: Sequence[float] | None = None


def replay(
    items: list[Item], consumed: Callable[[Item, Consumption], Any], ctx: RequestContext
) -> Iterator[Item]:
    """A cached stream's items, each usage in it priced at zero (a hit costs nothing)."""
    scratch = Consumption()
    for item in items:
        usage = consumed(item, scratch)
        if usage is not None:
            _zero_cost(usage)
        yield item


def _zero_cost(usage: Any) -> None:
    if isinstance(usage, dict):
        if "cost" in usage:
            usage["cost"] = 0.0
    elif usage.HasField("cost"):
        usage.cost = 0.0


def _encode(deployment_key: str, consumption: Consumption, items: list[bytes]) -> bytes:
    head = orjson.dumps(
        {
            "deployment": deployment_key,
            "usage": [
                consumption.prompt_tokens,
                consumption.completion_tokens,
                consumption.cached_tokens,
                consumption.reasoning_tokens,
            ],
        }
    )
    parts = [_LENGTH.pack(len(head)), head]
    for blob in items:
        parts.append(_LENGTH.pack(len(blob)))
        parts.append(blob)
    return b"".join(parts)


def _decode(data: bytes) -> tuple[str, Consumption, list[bytes]] | None:
    try:
        (length,) = _LENGTH.unpack_from(data, 0)
        offset = _LENGTH.size + length
        head = orjson.loads(data[_LENGTH.size : offset])
        items = []
        while offset < len(data):
            (length,) = _LENGTH.unpack_from(data, offset)
            offset += _LENGTH.size
            items.append(data[offset : offset + length])
            offset += length
        prompt, completion, cached, reasoning = head["usage"]
        consumption = Consumption(
            prompt_tokens=prompt,
            completion_tokens=completion,
            cached_tokens=cached,
            reasoning_tokens=reasoning,
        )
        return str(head["deployment"]), consumption, items
    except (struct.error, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        logger.warning("ignored an unreadable response cache entry")
        return None


def build_cache(
    config: GatewayConfig, providers: Mapping[str, Provider], metering: Metering
) -> ResponseCache:
    """Redis when `accounts.redis_url` is set (every replica shares hits), else this process's LRU."""
    settings = config.cache
    store: CacheStore
    if config.accounts.redis_url:
        store = RedisCacheStore.from_url(config.accounts.redis_url, settings.redis_prefix)
    else:
        store = MemoryCacheStore(settings.max_bytes)
    models = {model.id: model.cache for model in config.models if model.cache is not None}
    return ResponseCache(store, models, providers, metering, max_entry_bytes=settings.max_entry_bytes)
