"""The public model catalogue: each public id (or alias) maps to the deployments that can serve it."""

from __future__ import annotations

from dataclasses import dataclass, field

from server.config import (
    DeploymentConfig,
    GatewayConfig,
    ModelConfig,
    PricingConfig,
    ResilienceConfig,
)
from server.errors import InvalidRequest, ModelNotFound
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


class Catalogue:
    def __init__(self, config: GatewayConfig) -> None:
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
            return CatalogueEntry(
                id=model_id,
                kind="any",
                owned_by=provider,
                created=0,
                context_window=None,
                pricing=PricingConfig(),
                deployments=(Deployment(provider, upstream_model),),
                resilience=self._defaults,
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
        return CatalogueEntry(
            id=model.id,
            kind=model.kind,
            owned_by=model.owned_by or model.provider,
            created=model.created,
            context_window=model.context_window if model.context_window is not None else first.context_window,
            pricing=model.pricing if model.pricing != _NO_PRICE else first.pricing,
            deployments=deployments,
            aliases=model.aliases,
            supported_parameters=tuple(sorted(supported - CONTENT_PART_KINDS)),
            resilience=model.resilience,
            prompt_cache_affinity_ttl=model.prompt_cache_affinity_ttl
            if model.prompt_cache_affinity
            else None,
        )

    def _deployment(self, config: DeploymentConfig, kind: str) -> Deployment:
        if config.supported_parameters is not None:
            supported = frozenset(config.supported_parameters)
        else:
            supported = adapter_parameters(self._provider_types.get(config.provider, "openai"), kind)
        return Deployment(
            provider=config.provider,
            upstream_model=config.upstream_model,
            weight=config.weight,
            pricing=config.pricing,
            context_window=config.context_window,
            supported_parameters=supported,
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
    pricing = entry.pricing
    for name in _PRICE_FIELDS:
        value = getattr(pricing, name)
        if value is not None:
            setattr(model.pricing, name, value)
    return model
