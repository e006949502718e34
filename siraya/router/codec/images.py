"""OpenAI image generation JSON <-> `ImageParams` / `ImagesResult`."""

from __future__ import annotations

from typing import Any

import orjson

from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import (
    JsonObject,
    opt_bool,
    opt_int,
    opt_object,
    opt_str,
    require_object,
    require_str,
)
from siraya.router.codec.routing import collect_extra_body, decode_routing, encode_extra_body, require_model
from siraya.router.v1 import images_pb2

__all__ = ["decode_image_request", "decode_images_result", "encode_image_request", "encode_images_result"]

_STRING_PARAMS = ("quality", "output_format", "size", "moderation", "background", "style", "user")
# (name, lowest, highest), from CreateImageRequest.
_INT_PARAMS = (("n", 1, 10), ("output_compression", 0, 100), ("partial_images", 0, 3))
# CreateImageRequest's order, for the upstream body.
_OPTIONAL_PARAMS = (
    "n",
    "quality",
    "response_format",
    "output_format",
    "output_compression",
    "size",
    "moderation",
    "background",
    "style",
    "user",
    "partial_images",
)
_KNOWN_KEYS = frozenset({"prompt", "model", "stream", *_OPTIONAL_PARAMS})
# `stream` is reserved too: the upstream reply is parsed as one JSON body.
_RESERVED = frozenset({"model", "prompt", "stream"})
# Optional ImagesResponse fields, in the order OpenAI writes them.
_RESULT_STRINGS = ("background", "output_format", "quality", "size")


# --- requests ---------------------------------------------------------------------------------


def decode_image_request(body: JsonObject) -> images_pb2.ImageParams:
    """Decode a client's `POST /v1/images/generations` body (OpenAI's CreateImageRequest + routing).

    Unlike OpenAI, `model` is required: the gateway routes on it. `stream: true` is refused, since
    streamed image generation is not served.
    """
    # An empty prompt or an unknown response_format is `check_image_params`'s to refuse.
    params = images_pb2.ImageParams(prompt=require_str(body, "prompt"), model=require_model(body))
    if opt_bool(body, "stream"):
        raise CodecError(
            "Streaming image generation is not supported; omit 'stream' or set it to false.",
            "stream",
            "unsupported_parameter",
        )
    for key in _STRING_PARAMS:
        value = opt_str(body, key)
        if value is not None:
            setattr(params, key, value)
    response_format = opt_str(body, "response_format")
    if response_format is not None:
        params.response_format = response_format
    for key, lowest, highest in _INT_PARAMS:
        number = opt_int(body, key)
        if number is not None:
            if not lowest <= number <= highest:
                raise CodecError(
                    f"Invalid value for '{key}': expected an integer from {lowest} to {highest}.", key
                )
            setattr(params, key, number)
    decode_routing(body, params.routing)
    collect_extra_body(body, _KNOWN_KEYS, params.extra_body)
    return params


def encode_image_request(params: images_pb2.ImageParams, upstream_model: str) -> JsonObject:
    """Build the body for an OpenAI-compatible upstream's `/images/generations`."""
    body: JsonObject = {"model": upstream_model, "prompt": params.prompt}
    for key in _OPTIONAL_PARAMS:
        if params.HasField(key):
            body[key] = getattr(params, key)
    encode_extra_body(params.extra_body, body, _RESERVED)
    return body


# --- results ----------------------------------------------------------------------------------


def decode_images_result(body: JsonObject) -> images_pb2.ImagesResult:
    """Decode an upstream's ImagesResponse.

    A missing `created` reads as 0, and a missing `data` as no images. `model` is kept when the
    upstream names it; `provider` is the gateway's to set.
    """
    result = images_pb2.ImagesResult(created=opt_int(body, "created") or 0)
    data = body.get("data")
    if data is not None:
        if not isinstance(data, list):
            raise CodecError("Invalid type for 'data': expected an array.", "data", "invalid_type")
        for index, item in enumerate(data):
            _decode_image(require_object(item, f"data[{index}]"), result.data.add(), f"data[{index}]")
    for key in _RESULT_STRINGS:
        value = opt_str(body, key)
        if value is not None:
            setattr(result, key, value)
    usage = opt_object(body, "usage")
    if usage is not None:
        _decode_usage(usage, result.usage)
    model = opt_str(body, "model")
    if model is not None:
        result.model = model
    return result


def encode_images_result(result: images_pb2.ImagesResult) -> bytes:
    """Encode OpenAI's ImagesResponse bytes.

    `usage.cost` and trailing `model` and `provider` are the gateway's additions, written only when set.
    """
    out: JsonObject = {"created": result.created, "data": [_encode_image(image) for image in result.data]}
    for key in _RESULT_STRINGS:
        if result.HasField(key):
            out[key] = getattr(result, key)
    if result.HasField("usage"):
        out["usage"] = _encode_usage(result.usage)
    if result.HasField("model"):
        out["model"] = result.model
    if result.HasField("provider"):
        out["provider"] = result.provider
    return orjson.dumps(out)


def _decode_image(item: JsonObject, image: images_pb2.Image, param: str) -> None:
    for key in ("b64_json", "url", "revised_prompt"):
        value = opt_str(item, key, f"{param}.{key}")
        if value is not None:
            setattr(image, key, value)


def _encode_image(image: images_pb2.Image) -> JsonObject:
    out: JsonObject = {}
    if image.HasField("b64_json"):
        out["b64_json"] = image.b64_json
    if image.HasField("url"):
        out["url"] = image.url
    if image.HasField("revised_prompt"):
        out["revised_prompt"] = image.revised_prompt
    return out


def _decode_usage(usage: JsonObject, target: images_pb2.ImageUsage) -> None:
    target.SetInParent()
    target.input_tokens = opt_int(usage, "input_tokens", "usage.input_tokens") or 0
    target.output_tokens = opt_int(usage, "output_tokens", "usage.output_tokens") or 0
    target.total_tokens = opt_int(usage, "total_tokens", "usage.total_tokens") or 0
    details = opt_object(usage, "input_tokens_details", "usage.input_tokens_details")
    if details is not None:
        text_tokens = opt_int(details, "text_tokens", "usage.input_tokens_details.text_tokens")
        if text_tokens is not None:
            target.text_tokens = text_tokens
        image_tokens = opt_int(details, "image_tokens", "usage.input_tokens_details.image_tokens")
        if image_tokens is not None:
            target.image_tokens = image_tokens
    output = opt_object(usage, "output_tokens_details", "usage.output_tokens_details")
    if output is not None:
        target.output_image_tokens = (
            opt_int(output, "image_tokens", "usage.output_tokens_details.image_tokens") or 0
        )
        target.output_text_tokens = (
            opt_int(output, "text_tokens", "usage.output_tokens_details.text_tokens") or 0
        )


def _encode_usage(usage: images_pb2.ImageUsage) -> JsonObject:
    # OpenAI writes usage keys alphabetically. Its schema requires the details, so an upstream that
    # gave none gets zeros rather than a body the SDKs' types do not describe.
    out: dict[str, Any] = {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"image_tokens": usage.image_tokens, "text_tokens": usage.text_tokens},
        "output_tokens": usage.output_tokens,
    }
    # Optional in the schema: written when the upstream reported it, as it did.
    if usage.HasField("output_image_tokens") or usage.HasField("output_text_tokens"):
        out["output_tokens_details"] = {
            "image_tokens": usage.output_image_tokens,
            "text_tokens": usage.output_text_tokens,
        }
    out["total_tokens"] = usage.total_tokens
    if usage.HasField("cost"):
        out["cost"] = usage.cost
    return out
