"""The gateway's own request fields, shared by every request codec.

Besides OpenAI's parameters, any request body may carry:

- `model`: required by the gateway on every endpoint, because it is what requests are routed on;
- `models`: fallback model ids, tried in order after `model`;
- `provider`: routing preferences (`ProviderPreferences`: order, only, ignore, allow_fallbacks,
  sort, require_parameters, max_price);
- any other key: a provider-specific parameter, carried in `extra_body` to reach the upstream
  untouched. A literal `extra_body` object (sent by clients that do not merge it themselves, as
  the OpenAI SDKs do) is merged into the same Struct.

Routing keys are never forwarded upstream, wherever they were written. The rules on their values
(a known sort, non-empty names, prices >= 0) are `check_routing`'s, in validate.py.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2

from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import (
    JsonObject,
    opt_bool,
    opt_float,
    opt_str,
    require_list,
    require_object,
    require_str,
    value_to_python,
)
from siraya.router.v1 import common_pb2

__all__ = [
    "EXTRA_BODY_KEY",
    "ROUTING_KEYS",
    "collect_extra_body",
    "decode_routing",
    "encode_extra_body",
    "require_model",
]

ROUTING_KEYS = frozenset({"models", "provider"})
EXTRA_BODY_KEY = "extra_body"
_NOT_EXTRA = ROUTING_KEYS | {EXTRA_BODY_KEY}

_PROVIDER_LISTS = ("order", "only", "ignore")
_PROVIDER_KEYS = frozenset({*_PROVIDER_LISTS, "allow_fallbacks", "sort", "require_parameters", "max_price"})
_MAX_PRICE_KEYS = ("prompt", "completion", "image", "video_second")


def require_model(body: JsonObject) -> str:
    """Read the required `model`: the gateway routes on it, so no endpoint has a default (an empty
    one is refused by the checks in validate.py, as it is over gRPC)."""
    return require_str(body, "model")


def decode_routing(body: JsonObject, target: common_pb2.Routing) -> None:
    """Fill `target` from the body's `models` and `provider` fields.

    A routing key missing at the top level is also looked up in a literal `extra_body` object, where
    clients that do not merge `extra_body` put it. `target` is left unset when neither key is given,
    so `HasField("routing")` on the parent tells whether the caller asked for anything.
    """
    literal = body.get(EXTRA_BODY_KEY)
    nested = literal if isinstance(literal, dict) else None

    models, prefix = body.get("models"), ""
    if models is None and nested is not None:
        models, prefix = nested.get("models"), "extra_body."
    if models is not None:
        target.models.extend(_str_list(models, f"{prefix}models"))

    provider, prefix = body.get("provider"), ""
    if provider is None and nested is not None:
        provider, prefix = nested.get("provider"), "extra_body."
    if provider is not None:
        _decode_provider(require_object(provider, f"{prefix}provider"), target.provider, f"{prefix}provider")


def collect_extra_body(body: JsonObject, known_keys: frozenset[str], target: struct_pb2.Struct) -> None:
    """Copy the keys of `body` that no codec field reads into `target`, for the upstream.

    `known_keys` are the endpoint's own parameters; the routing keys and `extra_body` itself are
    always skipped. A literal `extra_body` object is merged last, so its keys win, and it may name
    a known parameter on purpose (the request encoders let it override their typed fields, except
    the reserved ones such as `model`). Nothing is written when there is nothing to carry.
    """
    unknown = body.keys() - known_keys - _NOT_EXTRA
    literal = body.get(EXTRA_BODY_KEY)
    if not unknown and literal is None:
        return
    extras: JsonObject = {key: body[key] for key in unknown}
    if literal is not None:
        for key, value in require_object(literal, EXTRA_BODY_KEY).items():
            if key not in ROUTING_KEYS:
                extras[key] = value
    if extras:
        target.update(extras)


def encode_extra_body(extra: struct_pb2.Struct, out: dict[str, Any], reserved: frozenset[str]) -> None:
    """Merge `extra` into the upstream body `out` at the top level, as the OpenAI SDKs do.

    Keys in `reserved` (the fields the gateway owns, such as `model` and the input) are never
    overridden; any other key in `extra` replaces the value the encoder wrote for it.
    """
    fields = extra.fields
    if not fields:
        return
    for key, value in fields.items():
        if key not in reserved:
            out[key] = value_to_python(value)


def _str_list(value: Any, param: str) -> list[str]:
    items = require_list(value, param)
    for index, item in enumerate(items):
        if not isinstance(item, str):
            path = f"{param}[{index}]"
            raise CodecError(f"Invalid value for '{path}': expected a non-empty string.", path)
    return items


def _decode_provider(prefs: JsonObject, target: common_pb2.ProviderPreferences, param: str) -> None:
    target.SetInParent()
    for key in prefs:
        # Rejected rather than dropped: an ignored preference (say a privacy filter) would be a silent lie.
        if key not in _PROVIDER_KEYS:
            raise CodecError(
                f"Unknown routing preference '{param}.{key}'.", f"{param}.{key}", "unknown_parameter"
            )
    for key in _PROVIDER_LISTS:
        values = prefs.get(key)
        if values is not None:
            getattr(target, key).extend(_str_list(values, f"{param}.{key}"))
    allow_fallbacks = opt_bool(prefs, "allow_fallbacks", f"{param}.allow_fallbacks")
    if allow_fallbacks is not None:
        target.allow_fallbacks = allow_fallbacks
    require_parameters = opt_bool(prefs, "require_parameters", f"{param}.require_parameters")
    if require_parameters is not None:
        target.require_parameters = require_parameters
    sort = opt_str(prefs, "sort", f"{param}.sort")
    if sort is not None:
        target.sort = sort
    max_price = prefs.get("max_price")
    if max_price is not None:
        _decode_max_price(require_object(max_price, f"{param}.max_price"), target.max_price, param)


def _decode_max_price(prices: JsonObject, target: common_pb2.MaxPrice, param: str) -> None:
    target.SetInParent()
    for key in prices:
        if key not in _MAX_PRICE_KEYS:
            path = f"{param}.max_price.{key}"
            raise CodecError(f"Unknown price ceiling '{path}'.", path, "unknown_parameter")
    for key in _MAX_PRICE_KEYS:
        path = f"{param}.max_price.{key}"
        price = opt_float(prices, key, path)
        if price is not None:
            setattr(target, key, price)
