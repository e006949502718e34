"""Decoders of the request fields OpenAI's chat and legacy completions share: integer ranges, `stop`,
`logit_bias`, `seed` and `stream_options`. One place, so both doors refuse the same shapes with the
same messages."""

from __future__ import annotations

from collections.abc import MutableMapping, MutableSequence
from typing import Any, Protocol

from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import JsonObject, opt_bool, opt_int, opt_object
from siraya.router.v1 import chat_pb2

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "INT64_MAX",
    "INT64_MIN",
    "decode_logit_bias",
    "decode_seed",
    "decode_stop",
    "decode_stream_options",
    "int_in",
    "invalid_type",
]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class _SampledParams(Protocol):
    """What the chat and completions params have in common (both generated messages)."""

    seed: int
    stop: MutableSequence[str]
    logit_bias: MutableMapping[str, int]
    stream_options: chat_pb2.StreamOptions


def invalid_type(param: str, expected: str) -> CodecError:
    return CodecError(f"Invalid type for '{param}': expected {expected}.", param, "invalid_type")


def int_in(value: int | None, lowest: int, highest: int, param: str) -> int | None:
    if value is not None and not lowest <= value <= highest:
        raise CodecError(f"Invalid value for '{param}': integer out of range.", param)
    return value


def decode_seed(body: JsonObject, params: _SampledParams) -> None:
    seed = int_in(opt_int(body, "seed"), INT64_MIN, INT64_MAX, "seed")
    if seed is not None:
        params.seed = seed


def decode_stop(value: Any, params: _SampledParams) -> None:
    if value is None:
        return
    if isinstance(value, str):
        params.stop.append(value)
        return
    if not isinstance(value, list):
        raise invalid_type("stop", "a string or an array of strings")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise invalid_type(f"stop[{index}]", "a string")
    params.stop.extend(value)


def decode_logit_bias(body: JsonObject, params: _SampledParams) -> None:
    logit_bias = opt_object(body, "logit_bias")
    for token in logit_bias or ():
        path = f"logit_bias.{token}"
        weight = int_in(opt_int(logit_bias, token, path), INT32_MIN, INT32_MAX, path)  # type: ignore[arg-type]
        if weight is None:
            raise invalid_type(path, "an integer")
        params.logit_bias[token] = weight


def decode_stream_options(body: JsonObject, params: _SampledParams) -> None:
    stream_options = opt_object(body, "stream_options")
    if stream_options is None:
        return
    params.stream_options.SetInParent()
    for key in ("include_usage", "include_obfuscation"):
        flag = opt_bool(stream_options, key, f"stream_options.{key}")
        if flag is not None:
            setattr(params.stream_options, key, flag)
