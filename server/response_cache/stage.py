"""The response cache as a stage of the gateway's pipeline.

`Gateway._unary` and `Gateway._stream` ask `ResponseCache.plan` once the model is resolved (and the
key allowed to use it). A request is cacheable when its model opts in (`cache: {ttl}`) or the
request does (`x-siraya-cache: ttl=60`), `x-siraya-cache: no-store` does not bypass it, and its
answer is not sampled (keys.py). For a cacheable request the plan's `hit` is looked up before
admission: a hit costs nothing, moves no credit, passes no limit, never reaches an upstream, and is
written to the ledger as `cache_hit` with what it saved. A miss runs the pipeline as usual, and
what the client was sent - the whole answer, or every stream item in order - is kept after
settlement, so a streamed hit replays a stream of the same shape (its usage priced at zero).

The namespace of every entry is the calling key's id: one key never sees another's answers.
The answer carries `x-siraya-cache: hit` or `miss` (cacheable requests only).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar

import orjson
from google.protobuf.message import Message

from server.accounts.keys import KeyRecord
from server.accounts.metering import Consumption, Metering
from server.accounts.money import micros_to_usd
from server.config import GatewayConfig, ModelCacheConfig
from server.observability import metrics
from server.providers.base import Provider, RequestContext
from server.response_cache.keys import cache_key, is_sampled, parse_directive
from server.response_cache.stores import CacheStore, MemoryCacheStore, RedisCacheStore
from server.routing.catalogue import CatalogueEntry
from server.routing.route import Route

__all__ = ["CACHE_HEADER", "CacheLookup", "Form", "ProtoForm", "ResponseCache", "build_cache"]

logger = logging.getLogger("siraya.cache")

CACHE_HEADER = "x-siraya-cache"
Item = TypeVar("Item")
M = TypeVar("M", bound=Message)
_LENGTH = struct.Struct(">I")


class Form(Protocol[Item]):
    """How one kind of reply item is written to and read from the cache."""

    name: str

    def encode(self, item: Item) -> bytes: ...

    def decode(self, data: bytes) -> Item: ...


class ProtoForm(Generic[M]):
    def __init__(self, message: type[M]) -> None:
        self.message = message
        self.name = message.DESCRIPTOR.full_name

    def encode(self, item: M) -> bytes:
        return item.SerializeToString()

    def decode(self, data: bytes) -> M:
        return self.message.FromString(data)


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

    def plan(
        self,
        entry: CatalogueEntry,
        params: Message | None,
        key: KeyRecord,
        ctx: RequestContext,
        form: Form[Any],
        streamed: bool,
    ) -> CacheLookup[Any] | None:
        """The lookup for a cacheable request; None (at the cost of a dict lookup) for any other."""
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
        return CacheLookup(self, cache_key(key.id, shape, entry.id, params), ttl, form, entry)

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

    __slots__ = ("cache", "key", "ttl", "form", "entry", "_items", "_size")

    def __init__(
        self, cache: ResponseCache, key: str, ttl: float, form: Form[Item], entry: CatalogueEntry
    ) -> None:
        self.cache = cache
        self.key = key
        self.ttl = ttl
        self.form = form
        self.entry = entry
        self._items: list[bytes] | None = []
        self._size = 0

    async def hit(self, key: KeyRecord, ctx: RequestContext) -> tuple[list[Item], Route, Consumption] | None:
        """The cached items, the route that first served them and their usage; None on a miss."""
        cache = self.cache
        try:
            data = await cache.store.get(self.key)
        except Exception:
            logger.warning("response cache lookup failed; answering from the upstream", exc_info=True)
            data = None
        found = None if data is None else _decode(data)
        route = None if found is None else cache._route(self.entry, found[0])
        if found is None or route is None:
            metrics.CACHE_LOOKUPS.labels(self.entry.id, "miss").inc()
            cache._mark(ctx, "miss")
            return None
        _, consumption, blobs = found
        items = [self.form.decode(blob) for blob in blobs]
        saved = await cache._metering.record_cache_hit(key, self.entry, route.deployment, consumption, ctx)
        metrics.CACHE_LOOKUPS.labels(self.entry.id, "hit").inc()
        if saved:
            metrics.CACHE_SAVED.labels(self.entry.id).inc(micros_to_usd(saved))
        cache._mark(ctx, "hit")
        return items, route, consumption

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
        size = store.size_bytes()
        if size is not None:
            metrics.CACHE_MEMORY_BYTES.set(size)


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
