"""The public model catalogue: each public id maps to the deployments that can serve it."""

from __future__ import annotations

from dataclasses import dataclass

from server.config import GatewayConfig, ModelConfig, PricingConfig
from server.errors import InvalidRequest, ModelNotFound
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


@dataclass(frozen=True, slots=True)
class Deployment:
    provider: str
    upstream_model: str


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    id: str
    kind: str
    owned_by: str
    created: int
    context_window: int | None
    pricing: PricingConfig
    deployments: tuple[Deployment, ...]


class Catalogue:
    def __init__(self, config: GatewayConfig) -> None:
        self._entries: dict[str, CatalogueEntry] = {}
        for model in config.models:
            self._entries[model.id] = _entry(model)
        self._passthrough = {name for name, p in config.providers.items() if p.passthrough_models}

    def entries(self) -> list[CatalogueEntry]:
        return list(self._entries.values())

    def get(self, model_id: str) -> CatalogueEntry:
        entry = self._entries.get(model_id)
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
            )
        raise ModelNotFound(model_id)

    def resolve(self, model_id: str, kind: str) -> CatalogueEntry:
        """The entry for `model_id`, which must serve `kind` requests."""
        if not model_id:
            raise InvalidRequest("You must provide a model parameter.", param="model", code="missing_required_parameter")
        entry = self.get(model_id)
        if entry.kind not in (kind, "any"):
            raise InvalidRequest(
                f"The model '{model_id}' is a {entry.kind} model and does not support {_KIND_VERB[kind]}.",
                param="model",
                code="model_not_supported",
            )
        return entry


def entry_to_proto(entry: CatalogueEntry) -> models_pb2.Model:
    model = models_pb2.Model(
        id=entry.id,
        object="model",
        created=entry.created,
        owned_by=entry.owned_by,
        kind=KIND_TO_PROTO.get(entry.kind, models_pb2.MODEL_KIND_UNSPECIFIED),
    )
    if entry.context_window is not None:
        model.context_window = entry.context_window
    pricing = entry.pricing
    for name in ("input_per_million", "output_per_million", "per_image", "per_video_second"):
        value = getattr(pricing, name)
        if value is not None:
            setattr(model.pricing, name, value)
    return model


def _entry(model: ModelConfig) -> CatalogueEntry:
    return CatalogueEntry(
        id=model.id,
        kind=model.kind,
        owned_by=model.owned_by or model.provider,
        created=model.created,
        context_window=model.context_window,
        pricing=model.pricing,
        deployments=(Deployment(model.provider, model.upstream_model),),
    )
