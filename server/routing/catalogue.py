"""The public model catalogue: each public id (or alias) maps to the deployments that can serve it.

Each deployment's price and limits are what the config says, completed field by field from the
built-in price catalogue (server/pricing/) when its provider is one the catalogue lists. What is
still unpriced after that is named in `CatalogueEntry.unpriced`: such a model serves only keys
without a credit limit (server/gateway.py), unless its config says `pricing: free`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server.config import (
    DeploymentConfig,
    GatewayConfig,
    ModelConfig,
    PricingConfig,
    ResilienceConfig,
)
from server.errors import InvalidRequest, ModelNotFound, PermissionDenied
from server.pricing import ListedModel, PriceCatalogue, builtin_catalogue
from server.pricing.builtin import DEFAULT_COUNTING
from server.providers.param_policy import CONTENT_PART_KINDS
from server.routing.parameters import adapter_parameters
from siraya.router.v1 import models_pb2

KIND_TO_PROTO = {
    "chat": models_pb2.MODEL_KIND_CHAT,
    "embedding": models_pb2.MODEL_KIND_EMBEDDING,
    "image": models_pb2.MODEL_KIND_IMAGE,
    "video": models_pb2.MODEL_KIND_VIDEO,
}
_KIND_VERB = {
    "chat": "chat completions",
    "embedding": "embeddings",
    "image": "image generation",
    "video": "video generation",
}
_NO_PRICE = PricingConfig()
_PRICE_FIELDS = (
    "input_per_million",
    "output_per_million",
    "per_image",
    "per_video_second",
    "cache_read_per_million",
    "cache_write_per_million",
    "audio_input_per_million",
    "audio_output_per_million",
    "reasoning_per_million",
)


@dataclass(frozen=True, slots=True)
class Deployment:
    """One way to serve a model. `key` names it for breakers and latency stats (never a secret)."""

    provider: str
    upstream_model: str
    weight: float = 1.0
    pricing: PricingConfig = _NO_PRICE
    context_window: int | None = None
    supported_parameters: frozenset[str] = frozenset()
    key: str = ""
    # The most tokens one reply may hold (config, else the built-in catalogue); None: unknown.
    max_output_tokens: int | None = None
    # How a prompt's tokens are bounded for its reservation: (OpenAI encoding, factor).
    counting: tuple[str, float] = DEFAULT_COUNTING

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", f"{self.provider}/{self.upstream_model}")


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    id: str
    kind: str
    owned_by: str
    created: int
    context_window: int | None
    pricing: PricingConfig
    deployments: tuple[Deployment, ...]
    aliases: tuple[str, ...] = ()
    supported_parameters: tuple[str, ...] = ()
    resilience: ResilienceConfig = field(default_factory=ResilienceConfig)
    # Seconds a prompt prefix sticks to the deployment that served it; None: no affinity.
    prompt_cache_affinity_ttl: float | None = None
    # The most tokens one reply may hold on every deployment (the smallest); None: unknown.
    max_output_tokens: int | None = None
    # Keys ("provider/upstream_model") of the deployments with no price for this kind of request.
    unpriced: tuple[str, ...] = ()
    # The request field that caps a reply on every deployment (`max_completion_tokens` only where
    # all of them are known to take it; every OpenAI-compatible server takes `max_tokens`).
    output_limit_field: str = "max_tokens"
    # The distinct prompt-token countings of the deployments (server/accounts/prompt_bound.py).
    counting: tuple[tuple[str, float], ...] = (DEFAULT_COUNTING,)


def unpriced_refusal(entry: CatalogueEntry) -> PermissionDenied:
    """The refusal of a model with no price to a key with a credit limit: never served for free silently."""
    return PermissionDenied(
        f"The model '{entry.id}' has no price ({', '.join(entry.unpriced)}), so a key with a credit limit"
        " cannot use it. Set its `pricing` in the gateway config, or `pricing: free` if it really costs"
        " nothing.",
        param="model",
        code="model_not_priced",
    )


def effective_pricing(configured: PricingConfig, listed: ListedModel | None) -> PricingConfig:
    """The config's prices, completed field by field from the catalogue's listing (the config wins).

    Sources stay honest: the listing's source and date when the config sets no price of its own.
    """
    if configured.free or listed is None:
        return configured
    own = configured.prices()
    prices = {**listed.prices(), **own}
    origin = configured if own else listed
    return PricingConfig.model_validate({**prices, "source": origin.source, "as_of": origin.as_of})


def _priced(pricing: PricingConfig, kind: str) -> bool:
    # A passthrough model's kind is not known: any price the catalogue lists for it will do.
    if kind == "any":
        return pricing.free or bool(pricing.prices())
    return pricing.priced_for(kind)


def _smallest(values: list[int | None]) -> int | None:
    known = [value for value in values if value is not None]
    return min(known) if known and len(known) == len(values) else None


class Catalogue:
    def __init__(self, config: GatewayConfig, prices: PriceCatalogue | None = None) -> None:
        self._prices = builtin_catalogue() if prices is None else prices
        # Whose list prices each provider takes (None: none).
        self._price_provider = {
            name: self._prices.provider_for(getattr(p, "base_url", None), getattr(p, "price_catalogue", None))
            for name, p in config.providers.items()
        }
        self._provider_types = {name: p.type for name, p in config.providers.items()}
        self._defaults = config.routing.defaults
        self._entries: dict[str, CatalogueEntry] = {}
        self._by_public_id: dict[str, CatalogueEntry] = {}
        for model in config.models:
            entry = self._entry(model)
            self._entries[model.id] = entry
            for public_id in (model.id, *model.aliases):
                self._by_public_id[public_id] = entry
        self._passthrough = {name for name, p in config.providers.items() if p.passthrough_models}

    def entries(self) -> list[CatalogueEntry]:
        return list(self._entries.values())

    def get(self, model_id: str) -> CatalogueEntry:
        entry = self._by_public_id.get(model_id)
        if entry is not None:
            return entry
        provider, _, upstream_model = model_id.partition("/")
        if upstream_model and provider in self._passthrough:
            price_provider = self._price_provider.get(provider)
            listed = self._prices.lookup(price_provider, upstream_model)
            pricing = effective_pricing(_NO_PRICE, listed)
            deployment = Deployment(
                provider,
                upstream_model,
                pricing=pricing,
                context_window=None if listed is None else listed.context_window,
                max_output_tokens=None if listed is None else listed.max_output_tokens,
                counting=self._prices.counting(price_provider, upstream_model),
            )
            return CatalogueEntry(
                id=model_id,
                kind="any",
                owned_by=provider,
                created=0,
                context_window=deployment.context_window,
                pricing=pricing,
                deployments=(deployment,),
                resilience=self._defaults,
                max_output_tokens=deployment.max_output_tokens,
                unpriced=() if _priced(pricing, "any") else (deployment.key,),
                output_limit_field=self._prices.output_limit_field(price_provider),
                counting=(deployment.counting,),
            )
        raise ModelNotFound(model_id)

    def usable(self, kind: str, allowed: tuple[str, ...] = ()) -> list[str]:
        """Ids of the `kind` models a key limited to `allowed` (empty: any) may use, for a 404's hint."""
        return [
            entry.id
            for entry in self._entries.values()
            if entry.kind == kind and (not allowed or entry.id in allowed)
        ]

    def resolve(self, model_id: str, kind: str) -> CatalogueEntry:
        """The entry for `model_id`, which must serve `kind` requests."""
        if not model_id:
            raise InvalidRequest(
                "You must provide a model parameter.", param="model", code="missing_required_parameter"
            )
        entry = self.get(model_id)
        if entry.kind not in (kind, "any"):
            raise InvalidRequest(
                f"The model '{model_id}' is a {entry.kind} model and does not support {_KIND_VERB[kind]}.",
                param="model",
                code="model_not_supported",
            )
        return entry

    def _entry(self, model: ModelConfig) -> CatalogueEntry:
        deployments = tuple(self._deployment(d, model.kind) for d in model.all_deployments())
        first = deployments[0]
        supported: set[str] = set()
        for deployment in deployments:
            supported |= deployment.supported_parameters
        if model.pricing != _NO_PRICE:
            listed = self._prices.lookup(self._price_provider.get(first.provider), first.upstream_model)
            pricing = effective_pricing(model.pricing, listed)
        else:
            pricing = first.pricing
        fields = {self._prices.output_limit_field(self._price_provider.get(d.provider)) for d in deployments}
        return CatalogueEntry(
            id=model.id,
            kind=model.kind,
            owned_by=model.owned_by or model.provider,
            created=model.created,
            context_window=model.context_window if model.context_window is not None else first.context_window,
            pricing=pricing,
            deployments=deployments,
            aliases=model.aliases,
            supported_parameters=tuple(sorted(supported - CONTENT_PART_KINDS)),
            resilience=model.resilience,
            prompt_cache_affinity_ttl=model.prompt_cache_affinity_ttl
            if model.prompt_cache_affinity
            else None,
            max_output_tokens=_smallest([d.max_output_tokens for d in deployments]),
            unpriced=tuple(d.key for d in deployments if not _priced(d.pricing, model.kind)),
            output_limit_field=fields.pop() if len(fields) == 1 else "max_tokens",
            counting=tuple(dict.fromkeys(d.counting for d in deployments)),
        )

    def _deployment(self, config: DeploymentConfig, kind: str) -> Deployment:
        if config.supported_parameters is not None:
            supported = frozenset(config.supported_parameters)
        else:
            supported = adapter_parameters(self._provider_types.get(config.provider, "openai"), kind)
        price_provider = self._price_provider.get(config.provider)
        listed = self._prices.lookup(price_provider, config.upstream_model)
        context_window, max_output = config.context_window, config.max_output_tokens
        if listed is not None:
            context_window = context_window if context_window is not None else listed.context_window
            max_output = max_output if max_output is not None else listed.max_output_tokens
        return Deployment(
            provider=config.provider,
            upstream_model=config.upstream_model,
            weight=config.weight,
            pricing=effective_pricing(config.pricing, listed),
            context_window=context_window,
            supported_parameters=supported,
            max_output_tokens=max_output,
            counting=self._prices.counting(price_provider, config.upstream_model),
        )


def entry_to_proto(entry: CatalogueEntry) -> models_pb2.Model:
    model = models_pb2.Model(
        id=entry.id,
        object="model",
        created=entry.created,
        owned_by=entry.owned_by,
        kind=KIND_TO_PROTO.get(entry.kind, models_pb2.MODEL_KIND_UNSPECIFIED),
        supported_parameters=entry.supported_parameters,
    )
    if entry.context_window is not None:
        model.context_window = entry.context_window
    if entry.max_output_tokens is not None:
        model.max_output_tokens = entry.max_output_tokens
    pricing = entry.pricing
    for name in _PRICE_FIELDS:
        value = getattr(pricing, name)
        if value is not None:
            setattr(model.pricing, name, value)
    if pricing.free:
        model.pricing.free = True
    if pricing.source is not None:
        model.pricing.source = pricing.source
    if pricing.as_of is not None:
        model.pricing.as_of = pricing.as_of
    return model
