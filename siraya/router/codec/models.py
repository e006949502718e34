"""`Model` protos -> OpenAI's Model / ListModelsResponse JSON, plus the gateway's catalogue fields."""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from siraya.router.codec.fields import JsonObject
from siraya.router.v1 import models_pb2

__all__ = ["encode_model", "encode_model_bytes", "encode_model_list"]

_KIND_NAMES = {
    models_pb2.MODEL_KIND_CHAT: "chat",
    models_pb2.MODEL_KIND_EMBEDDING: "embedding",
    models_pb2.MODEL_KIND_IMAGE: "image",
    models_pb2.MODEL_KIND_VIDEO: "video",
}
_PRICES = (
    "input_per_million",
    "output_per_million",
    "cache_read_per_million",
    "cache_write_per_million",
    "per_image",
    "per_video_second",
)


def encode_model(model: models_pb2.Model) -> JsonObject:
    """Build one Model object: OpenAI's four keys, then `type`, `context_window`, `max_output_tokens`,
    `pricing` (with `free`, `source` and `as_of` when set) and `supported_parameters` (all but the
    last only when known)."""
    out: JsonObject = {
        "id": model.id,
        "object": "model",
        "created": model.created,
        "owned_by": model.owned_by,
    }
    kind = _KIND_NAMES.get(model.kind)
    if kind is not None:
        out["type"] = kind
    if model.HasField("context_window"):
        out["context_window"] = model.context_window
    if model.HasField("max_output_tokens"):
        out["max_output_tokens"] = model.max_output_tokens
    pricing = model.pricing
    prices: JsonObject = {key: getattr(pricing, key) for key in _PRICES if pricing.HasField(key)}
    if pricing.free:
        prices["free"] = True
    if prices:
        for key in ("source", "as_of"):
            if pricing.HasField(key):
                prices[key] = getattr(pricing, key)
        out["pricing"] = prices
    out["supported_parameters"] = list(model.supported_parameters)
    return out


def encode_model_bytes(model: models_pb2.Model) -> bytes:
    """Encode the body of `GET /v1/models/{id}`."""
    return orjson.dumps(encode_model(model))


def encode_model_list(models: Iterable[models_pb2.Model]) -> bytes:
    """Encode the body of `GET /v1/models`: OpenAI's ListModelsResponse."""
    return orjson.dumps({"object": "list", "data": [encode_model(model) for model in models]})
