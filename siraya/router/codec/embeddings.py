"""OpenAI embeddings JSON <-> `EmbeddingParams` / `EmbeddingList`.

Vectors travel as float32 in the proto. Upstreams are asked for base64, which is exact and about a
quarter the size of float JSON; clients get floats or base64, as they asked, in OpenAI's byte layout.
"""

from __future__ import annotations

import binascii
import math
import sys
from array import array
from collections.abc import Sequence
from typing import Any

import numpy
import orjson

from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import JsonObject, opt_int, opt_str, require_list, require_object
from siraya.router.codec.routing import collect_extra_body, decode_routing, encode_extra_body, require_model
from siraya.router.codec.text_or_tokens import decode_text_or_tokens
from siraya.router.v1 import embeddings_pb2

__all__ = [
    "decode_embedding_list",
    "decode_embedding_request",
    "encode_embedding_list",
    "encode_embedding_request",
]

_KNOWN_KEYS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})
_RESERVED = frozenset({"model", "input"})
_INT32_MAX = 2**31 - 1
# OpenAI's base64 is little-endian float32, whatever the host.
_SWAP_BYTES = sys.byteorder == "big"


# --- requests ---------------------------------------------------------------------------------


def decode_embedding_request(body: JsonObject) -> embeddings_pb2.EmbeddingParams:
    """Decode a client's `POST /v1/embeddings` body (OpenAI's CreateEmbeddingRequest + routing)."""
    params = embeddings_pb2.EmbeddingParams(model=require_model(body))
    decode_text_or_tokens(body.get("input"), params, "input")
    encoding_format = opt_str(body, "encoding_format")
    if encoding_format is not None:
        params.encoding_format = encoding_format
    dimensions = opt_int(body, "dimensions")
    if dimensions is not None:
        if not 1 <= dimensions <= _INT32_MAX:
            raise CodecError("Invalid value for 'dimensions': expected an integer >= 1.", "dimensions")
        params.dimensions = dimensions
    user = opt_str(body, "user")
    if user is not None:
        params.user = user
    decode_routing(body, params.routing)
    collect_extra_body(body, _KNOWN_KEYS, params.extra_body)
    return params


def encode_embedding_request(params: embeddings_pb2.EmbeddingParams, upstream_model: str) -> JsonObject:
    """Build the body for an OpenAI-compatible upstream's `/embeddings`.

    The upstream is asked for base64 (exact float32, compact) whatever the client wants; the edge
    encodes for the client. A literal `extra_body.encoding_format` overrides this for upstreams that
    only speak floats: `decode_embedding_list` reads both.
    """
    body: JsonObject = {"model": upstream_model, "input": _encode_input(params), "encoding_format": "base64"}
    if params.HasField("dimensions"):
        body["dimensions"] = params.dimensions
    if params.HasField("user"):
        body["user"] = params.user
    encode_extra_body(params.extra_body, body, _RESERVED)
    return body


def _encode_input(params: embeddings_pb2.EmbeddingParams) -> str | list[str] | list[int] | list[list[int]]:
    kind = params.WhichOneof("input")
    if kind == "text":
        return params.text
    if kind == "texts":
        return list(params.texts.values)
    if kind == "tokens":
        return list(params.tokens.values)
    if kind == "token_lists":
        return [list(ids.values) for ids in params.token_lists.values]
    raise CodecError("Missing required parameter: 'input'.", "input", "missing_required_parameter")


# --- results ----------------------------------------------------------------------------------


def decode_embedding_list(body: JsonObject) -> embeddings_pb2.EmbeddingList:
    """Decode an upstream's CreateEmbeddingResponse; each vector may be floats or base64 float32."""
    result = embeddings_pb2.EmbeddingList(object="list", model=opt_str(body, "model") or "")
    data = require_list(body.get("data"), "data")
    for position, item in enumerate(data):
        param = f"data[{position}]"
        item = require_object(item, param)
        index = opt_int(item, "index", f"{param}.index")
        embedding = result.data.add(index=position if index is None else index)
        vector = item.get("embedding")
        if isinstance(vector, str):
            embedding.embedding.extend(_unpack_base64(vector, f"{param}.embedding"))
        elif isinstance(vector, list):
            embedding.embedding.extend(_float_array(vector, f"{param}.embedding"))
        else:
            raise CodecError(
                f"Invalid type for '{param}.embedding': expected an array of numbers or a base64 string.",
                f"{param}.embedding",
                "invalid_type",
            )
    usage = body.get("usage")
    if usage is not None:
        usage = require_object(usage, "usage")
        result.usage.prompt_tokens = opt_int(usage, "prompt_tokens", "usage.prompt_tokens") or 0
        result.usage.total_tokens = opt_int(usage, "total_tokens", "usage.total_tokens") or 0
    return result


def encode_embedding_list(result: embeddings_pb2.EmbeddingList, encoding_format: str) -> bytes:
    """Encode OpenAI's CreateEmbeddingResponse bytes; `encoding_format` is the client's ("float" or "base64").

    `usage.cost` and a trailing `provider` are the gateway's additions, written only when set.
    """
    encode_vector = _pack_base64 if encoding_format == "base64" else _shortest_float32
    data = [
        {"object": "embedding", "index": item.index, "embedding": encode_vector(item.embedding)}
        for item in result.data
    ]
    usage: JsonObject = {
        "prompt_tokens": result.usage.prompt_tokens,
        "total_tokens": result.usage.total_tokens,
    }
    if result.usage.HasField("cost"):
        usage["cost"] = result.usage.cost
    out: JsonObject = {"object": "list", "data": data, "model": result.model, "usage": usage}
    if result.HasField("provider"):
        out["provider"] = result.provider
    return orjson.dumps(out)


def _unpack_base64(text: str, param: str) -> array[float]:
    try:
        raw = binascii.a2b_base64(text)
    except (binascii.Error, ValueError):
        raise CodecError(f"Invalid value for '{param}': not valid base64.", param) from None
    if len(raw) % 4:
        raise CodecError(f"Invalid value for '{param}': not a whole number of float32 values.", param)
    values = array("f")
    values.frombytes(raw)
    if _SWAP_BYTES:
        values.byteswap()
    return _check_finite(values, param)


def _float_array(vector: list[Any], param: str) -> array[float]:
    try:
        values = array("f", vector)
    except TypeError:
        raise CodecError(f"Invalid value for '{param}': expected an array of numbers.", param) from None
    return _check_finite(values, param)


def _check_finite(values: array[float], param: str) -> array[float]:
    # A sum of float32 values cannot overflow a double: it is NaN or infinite only if some value is
    # (a JSON number beyond float32's range becomes infinity here). JSON could not carry it back.
    if not math.isfinite(sum(values)):
        raise CodecError(f"Invalid value for '{param}': a value is NaN or out of float32 range.", param)
    return values


def _pack_base64(values: Sequence[float]) -> str:
    packed = array("f", list(values))
    if _SWAP_BYTES:
        packed.byteswap()
    return binascii.b2a_base64(packed.tobytes(), newline=False).decode("ascii")


# --- float32 -> shortest decimal --------------------------------------------------------------
# OpenAI writes each float32 as the shortest decimal that reads back as the same float32
# ("0.0023064255", not the double "0.0023064254..."), so clients parse exactly those doubles.
# orjson writes a numpy float32 array that way (Ryu's float32 algorithm, in C); reading it back
# gives the doubles those decimals denote, which the response's own orjson.dumps then writes in its
# usual form. 256 values: ~13 us, against ~200 us for the digit search in Python this replaced.


def _shortest_float32(vector: Sequence[float]) -> list[float]:
    packed = numpy.asarray(vector, dtype=numpy.float32)
    shortest: list[float] = orjson.loads(orjson.dumps(packed, option=orjson.OPT_SERIALIZE_NUMPY))
    return shortest
