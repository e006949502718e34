"""Codecs for embeddings, images, videos and models, and the shared routing / extra_body fields."""

from __future__ import annotations

import base64
import email
import email.policy
import random
import struct
from array import array
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

import httpx
import openai
import orjson
import pytest
from google.protobuf import struct_pb2
from multidict import MultiDict

from siraya.router.codec.embeddings import (
    decode_embedding_list,
    decode_embedding_request,
    encode_embedding_list,
    encode_embedding_request,
)
from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import struct_to_dict
from siraya.router.codec.images import (
    decode_image_request,
    decode_images_result,
    encode_image_request,
    encode_images_result,
)
from siraya.router.codec.models import encode_model, encode_model_bytes, encode_model_list
from siraya.router.codec.routing import collect_extra_body, decode_routing, encode_extra_body
from siraya.router.codec.validate import (
    check_embedding_params,
    check_image_params,
    check_routing,
    check_video_params,
)
from siraya.router.codec.videos import (
    decode_video,
    decode_video_form,
    decode_video_request,
    encode_video,
    encode_video_request,
)
from siraya.router.v1 import common_pb2, embeddings_pb2, models_pb2, videos_pb2
from tests.openapi_schema import assert_matches_schema

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"


def _float32(values: list[float]) -> list[float]:
    return array("f", values).tolist()


def _unpack_float32(text: str) -> list[float]:
    raw = base64.b64decode(text)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def _exact_shortest_float32(value: float) -> float:
    """Independent reference: the nearest of the shortest decimals in the float32's rounding interval."""
    if value == 0:
        return value
    if value < 0:
        return -_exact_shortest_float32(-value)
    (bits,) = struct.unpack("<I", struct.pack("<f", value))
    below = struct.unpack("<f", struct.pack("<I", bits - 1))[0]
    above = struct.unpack("<f", struct.pack("<I", bits + 1))[0] if bits < 0x7F7FFFFF else 2 * value - below
    exact = Fraction(value)
    low, high = (exact + Fraction(below)) / 2, (exact + Fraction(above)) / 2
    ties_round_here = bits % 2 == 0
    decimal = Decimal(value)
    for digits in range(1, 10):
        candidate = decimal.quantize(Decimal(1).scaleb(decimal.adjusted() - digits + 1), ROUND_HALF_EVEN)
        point = Fraction(candidate)
        if low < point < high or (ties_round_here and point in (low, high)):
            return float(candidate)
    raise AssertionError(f"no decimal of 9 digits or fewer for {value!r}")


def checked(decode: Callable[[Any], Any], check: Callable[[Any], None]) -> Callable[[Any], Any]:
    """What a REST body meets: the decoder's JSON checks, then the request rules every servicer applies."""

    def decode_and_check(body: Any) -> Any:
        params = decode(body)
        check(params)
        return params

    return decode_and_check


def _decode_routing(body: Any) -> common_pb2.Routing:
    routing = common_pb2.Routing()
    decode_routing(body, routing)
    return routing


def _assert_codec_error(decode: Callable[[Any], Any], body: Any, param: str) -> CodecError:
    with pytest.raises(CodecError) as caught:
        decode(body)
    assert caught.value.param == param, caught.value.message
    return caught.value


# --- routing and extra_body -------------------------------------------------------------------


def test_decode_routing_reads_every_provider_preference() -> None:
    routing = common_pb2.Routing()
    decode_routing(
        {
            "models": ["gpt-4o-mini", "claude-haiku"],
            "provider": {
                "order": ["azure", "openai"],
                "only": ["azure", "openai", "groq"],
                "ignore": ["deepinfra"],
                "allow_fallbacks": False,
                "sort": "latency",
                "require_parameters": True,
                "max_price": {"prompt": 0.5, "completion": 1, "image": 0.04, "video_second": 0.1},
            },
        },
        routing,
    )
    assert list(routing.models) == ["gpt-4o-mini", "claude-haiku"]
    provider = routing.provider
    assert list(provider.order) == ["azure", "openai"]
    assert list(provider.only) == ["azure", "openai", "groq"]
    assert list(provider.ignore) == ["deepinfra"]
    assert provider.HasField("allow_fallbacks") and provider.allow_fallbacks is False
    assert provider.sort == "latency"
    assert provider.require_parameters is True
    prices = provider.max_price
    assert (prices.prompt, prices.completion, prices.image, prices.video_second) == (0.5, 1.0, 0.04, 0.1)


def test_decode_routing_leaves_routing_unset_without_routing_keys() -> None:
    params = embeddings_pb2.EmbeddingParams()
    decode_routing({"model": "m", "input": "x"}, params.routing)
    assert not params.HasField("routing")
    params = embeddings_pb2.EmbeddingParams()
    decode_routing({"provider": {}}, params.routing)
    assert params.routing.HasField("provider")
    assert not params.routing.provider.HasField("allow_fallbacks")


def test_decode_routing_reads_a_literal_extra_body_but_the_top_level_wins() -> None:
    routing = common_pb2.Routing()
    decode_routing(
        {"models": ["top"], "extra_body": {"models": ["nested"], "provider": {"sort": "price"}}}, routing
    )
    assert list(routing.models) == ["top"]
    assert routing.provider.sort == "price"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"models": "gpt-4o"}, "models"),
        ({"models": ["gpt-4o", 3]}, "models[1]"),
        ({"models": [""]}, "models[0]"),
        ({"provider": ["openai"]}, "provider"),
        ({"provider": {"order": "openai"}}, "provider.order"),
        ({"provider": {"sort": "cheapest"}}, "provider.sort"),
        ({"provider": {"allow_fallbacks": "no"}}, "provider.allow_fallbacks"),
        ({"provider": {"data_collection": "deny"}}, "provider.data_collection"),
        ({"provider": {"max_price": {"prompt": -1}}}, "provider.max_price.prompt"),
        ({"provider": {"max_price": {"request": 1}}}, "provider.max_price.request"),
        ({"extra_body": {"provider": {"sort": 1}}}, "extra_body.provider.sort"),
    ],
)
def test_decode_routing_names_the_bad_param(body: dict[str, Any], param: str) -> None:
    _assert_codec_error(checked(_decode_routing, check_routing), body, param)


def test_collect_extra_body_keeps_unknown_keys_and_merges_a_literal_extra_body() -> None:
    target = struct_pb2.Struct()
    body = {
        "model": "m",
        "input": "x",
        "models": ["n"],
        "provider": {"sort": "price"},
        "top_k": 5,
        "safety": None,
        "options": {"truncate": "END", "tags": ["a", 1.5, True]},
        "extra_body": {"top_k": 7, "input_type": "query", "provider": {"only": ["x"]}},
    }
    collect_extra_body(body, frozenset({"model", "input"}), target)
    assert struct_to_dict(target) == {
        "top_k": 7,
        "safety": None,
        "options": {"truncate": "END", "tags": ["a", 1.5, True]},
        "input_type": "query",
    }


def test_collect_extra_body_writes_nothing_without_extras() -> None:
    params = embeddings_pb2.EmbeddingParams()
    collect_extra_body(
        {"model": "m", "input": "x", "models": ["a"]}, frozenset({"model", "input"}), params.extra_body
    )
    assert not params.HasField("extra_body")
    _assert_codec_error(
        lambda b: collect_extra_body(b, frozenset(), struct_pb2.Struct()), {"extra_body": [1]}, "extra_body"
    )


def test_encode_extra_body_never_overrides_reserved_keys() -> None:
    extra = struct_pb2.Struct()
    extra.update({"model": "evil", "input": "evil", "dimensions": 256, "truncate": "END"})
    out: dict[str, Any] = {"model": "upstream", "input": "text", "dimensions": 1024}
    encode_extra_body(extra, out, frozenset({"model", "input"}))
    assert out == {"model": "upstream", "input": "text", "dimensions": 256, "truncate": "END"}


# --- embeddings: requests ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind", "read"),
    [
        ("The food was delicious", "text", lambda p: p.text),
        (["first", "second"], "texts", lambda p: list(p.texts.values)),
        ([1212, 318, 257, 1332, 13], "tokens", lambda p: list(p.tokens.values)),
        ([[1212, 318], [257]], "token_lists", lambda p: [list(t.values) for t in p.token_lists.values]),
    ],
)
def test_decode_embedding_request_input_kinds_round_trip(
    value: Any, kind: str, read: Callable[[embeddings_pb2.EmbeddingParams], Any]
) -> None:
    params = decode_embedding_request({"model": "text-embedding-3-small", "input": value})
    assert params.WhichOneof("input") == kind
    assert read(params) == value
    assert encode_embedding_request(params, "up")["input"] == value


def test_decode_embedding_request_reads_every_field() -> None:
    params = decode_embedding_request(
        {
            "model": "text-embedding-3-large",
            "input": "hello",
            "encoding_format": "float",
            "dimensions": 256,
            "user": "user-1234",
            "models": ["voyage-3"],
            "provider": {"order": ["openai"]},
            "input_type": "document",
        }
    )
    assert params.model == "text-embedding-3-large"
    assert params.encoding_format == "float"
    assert params.dimensions == 256
    assert params.user == "user-1234"
    assert list(params.routing.models) == ["voyage-3"]
    assert list(params.routing.provider.order) == ["openai"]
    assert struct_to_dict(params.extra_body) == {"input_type": "document"}


def test_decode_embedding_request_leaves_optional_fields_unset() -> None:
    params = decode_embedding_request({"model": "m", "input": "x", "encoding_format": None, "user": None})
    for field in ("encoding_format", "dimensions", "user", "routing", "extra_body"):
        assert not params.HasField(field), field


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "", "input": "x"}, "model"),
        ({"model": 3, "input": "x"}, "model"),
        ({"model": "m"}, "input"),
        ({"model": "m", "input": ""}, "input"),
        ({"model": "m", "input": []}, "input"),
        ({"model": "m", "input": {"text": "x"}}, "input"),
        ({"model": "m", "input": ["a", 1]}, "input[1]"),
        ({"model": "m", "input": ["a", ""]}, "input[1]"),
        ({"model": "m", "input": [1, "a"]}, "input[1]"),
        ({"model": "m", "input": [1, 2.5]}, "input[1]"),
        ({"model": "m", "input": [1, -2]}, "input[1]"),
        ({"model": "m", "input": [True, 1]}, "input[0]"),
        ({"model": "m", "input": [[1], 2]}, "input[1]"),
        ({"model": "m", "input": [[1], []]}, "input[1]"),
        ({"model": "m", "input": [[1], [2, "x"]]}, "input[1][1]"),
        ({"model": "m", "input": [None]}, "input[0]"),
        ({"model": "m", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "m", "input": "x", "dimensions": 0}, "dimensions"),
        ({"model": "m", "input": "x", "dimensions": "256"}, "dimensions"),
        ({"model": "m", "input": "x", "user": 42}, "user"),
        ({"model": "m", "input": "x", "provider": {"sort": "fast"}}, "provider.sort"),
        ({"model": "m", "input": "x", "extra_body": "x"}, "extra_body"),
    ],
)
def test_decode_embedding_request_names_the_bad_param(body: dict[str, Any], param: str) -> None:
    _assert_codec_error(checked(decode_embedding_request, check_embedding_params), body, param)


def test_encode_embedding_request_asks_the_upstream_for_base64() -> None:
    params = decode_embedding_request(
        {
            "model": "text-embedding-3-small",
            "input": ["a", "b"],
            "encoding_format": "float",
            "dimensions": 512,
            "user": "u",
            "models": ["fallback"],
            "provider": {"sort": "price"},
            "truncate": "END",
        }
    )
    body = encode_embedding_request(params, "text-embedding-3-small-2024")
    assert body == {
        "model": "text-embedding-3-small-2024",
        "input": ["a", "b"],
        "encoding_format": "base64",
        "dimensions": 512,
        "user": "u",
        "truncate": "END",
    }
    assert list(body)[:3] == ["model", "input", "encoding_format"]


def test_encode_embedding_request_lets_extra_body_override_all_but_model_and_input() -> None:
    params = decode_embedding_request(
        {"model": "m", "input": "x", "extra_body": {"encoding_format": "float", "model": "x", "input": "y"}}
    )
    body = encode_embedding_request(params, "upstream")
    assert body == {"model": "upstream", "input": "x", "encoding_format": "float"}


# --- embeddings: results ----------------------------------------------------------------------

# Values from OpenAI's documentation: each is the shortest decimal of its float32.
_DOC_VECTOR = [0.0023064255, -0.009327292, -0.0028842222, 0.015829977, -4.547132e-05, 0.5, 0.0, -1.0]


def _random_vector(rng: random.Random, size: int) -> list[float]:
    return [_exact_shortest_float32(v) for v in _float32([rng.gauss(0, 0.04) for _ in range(size)])]


def _openai_float_body(vectors: list[list[float]]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 9, "total_tokens": 9},
    }


def _openai_base64_body(vectors: list[list[float]]) -> dict[str, Any]:
    body = _openai_float_body(vectors)
    for item, vector in zip(body["data"], vectors, strict=True):
        item["embedding"] = base64.b64encode(array("f", vector).tobytes()).decode()
    return body


def test_float_output_is_byte_identical_to_openai() -> None:
    vectors = [_DOC_VECTOR, _random_vector(random.Random(7), 1536)]
    body = _openai_float_body(vectors)
    encoded = encode_embedding_list(decode_embedding_list(body), "float")
    assert encoded == orjson.dumps(body)
    assert_matches_schema(orjson.loads(encoded), "CreateEmbeddingResponse")


def test_float_output_is_the_shortest_decimal_of_each_float32() -> None:
    rng = random.Random(11)
    values = [rng.gauss(0, scale) for scale in (1e-6, 1e-3, 0.05, 1, 1e4, 1e30) for _ in range(400)]
    values += [0.1, 1 / 3, 16777216.0, 1e-38, -2.5, 3.4028234663852886e38]
    result = embeddings_pb2.EmbeddingList(data=[embeddings_pb2.Embedding(index=0, embedding=values)])
    written = orjson.loads(encode_embedding_list(result, "float"))["data"][0]["embedding"]
    assert written == [_exact_shortest_float32(v) for v in _float32(values)]


def test_float_output_keeps_the_sign_of_zero_and_the_shortest_subnormal() -> None:
    values = [-0.0, 0.0, 1e-45, -1e-45, 2.0269908e-6]
    result = embeddings_pb2.EmbeddingList(data=[embeddings_pb2.Embedding(index=0, embedding=values)])
    encoded = encode_embedding_list(result, "float")
    assert b'"embedding":[-0.0,0.0,1e-45,-1e-45,2.0269908e-6]' in encoded


def test_base64_output_is_byte_identical_to_openai() -> None:
    vectors = [_DOC_VECTOR, _random_vector(random.Random(3), 256)]
    body = _openai_base64_body(vectors)
    encoded = encode_embedding_list(decode_embedding_list(body), "base64")
    assert encoded == orjson.dumps(body)


def test_base64_output_decodes_to_the_same_float32_values() -> None:
    vector = _float32([random.Random(5).uniform(-1, 1) for _ in range(3072)])
    result = embeddings_pb2.EmbeddingList(
        object="list",
        model="text-embedding-3-large",
        data=[embeddings_pb2.Embedding(index=0, embedding=vector)],
        usage=common_pb2.Usage(prompt_tokens=4, total_tokens=4),
    )
    written = orjson.loads(encode_embedding_list(result, "base64"))
    assert _unpack_float32(written["data"][0]["embedding"]) == vector
    # OpenAI's schema types `embedding` as floats only; check the rest of the layout.
    written["data"][0]["embedding"] = vector
    assert_matches_schema(written, "CreateEmbeddingResponse")


@pytest.mark.parametrize("client_format", ["float", "base64"])
def test_float_and_base64_upstreams_decode_to_the_same_result(client_format: str) -> None:
    vectors = [_random_vector(random.Random(1), 64), _DOC_VECTOR]
    from_floats = decode_embedding_list(_openai_float_body(vectors))
    from_base64 = decode_embedding_list(_openai_base64_body(vectors))
    assert from_floats == from_base64
    assert [list(item.embedding) for item in from_floats.data] == [_float32(v) for v in vectors]
    assert from_floats.usage.prompt_tokens == 9 and from_floats.model == "text-embedding-3-small"
    again = decode_embedding_list(orjson.loads(encode_embedding_list(from_floats, client_format)))
    assert again == from_floats


def test_embedding_list_writes_cost_and_provider_last() -> None:
    result = decode_embedding_list(_openai_float_body([[0.5]]))
    result.usage.cost = 0.00002
    result.provider = "openai"
    written = orjson.loads(encode_embedding_list(result, "float"))
    assert list(written) == ["object", "data", "model", "usage", "provider"]
    assert written["usage"] == {"prompt_tokens": 9, "total_tokens": 9, "cost": 0.00002}
    assert_matches_schema(written, "CreateEmbeddingResponse")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"object": "list", "model": "m"}, "data"),
        ({"data": {"embedding": [1.0]}}, "data"),
        ({"data": ["x"]}, "data[0]"),
        ({"data": [{"embedding": None}]}, "data[0].embedding"),
        ({"data": [{"embedding": [0.1, "x"]}]}, "data[0].embedding"),
        ({"data": [{"embedding": [0.1, 1e39]}]}, "data[0].embedding"),
        ({"data": [{"embedding": "AAAAAAAA!"}]}, "data[0].embedding"),
        ({"data": [{"embedding": base64.b64encode(b"\x00" * 6).decode()}]}, "data[0].embedding"),
        (
            {"data": [{"embedding": base64.b64encode(array("f", [float("nan")]).tobytes()).decode()}]},
            "data[0].embedding",
        ),
        ({"data": [{"index": "0", "embedding": [1.0]}]}, "data[0].index"),
        ({"data": [], "usage": {"prompt_tokens": "9"}}, "usage.prompt_tokens"),
    ],
)
def test_decode_embedding_list_names_the_bad_shape(body: dict[str, Any], param: str) -> None:
    _assert_codec_error(decode_embedding_list, body, param)


@pytest.mark.parametrize("encoding_format", ["float", "base64", None])
def test_openai_sdk_reads_gateway_embeddings(encoding_format: str | None) -> None:
    vectors = [_float32([0.1, -0.25, 3e-7]), _float32(_random_vector(random.Random(2), 32))]
    seen: list[embeddings_pb2.EmbeddingParams] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        params = decode_embedding_request(orjson.loads(request.content))
        seen.append(params)
        result = embeddings_pb2.EmbeddingList(
            object="list",
            model=params.model,
            data=[embeddings_pb2.Embedding(index=i, embedding=v) for i, v in enumerate(vectors)],
            usage=common_pb2.Usage(prompt_tokens=5, total_tokens=5),
        )
        body = encode_embedding_list(result, params.encoding_format or "float")
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    client = openai.OpenAI(
        api_key="sk-test",
        base_url="http://gateway.test/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(gateway)),
    )
    kwargs: dict[str, Any] = {} if encoding_format is None else {"encoding_format": encoding_format}
    response = client.embeddings.create(
        model="text-embedding-3-small", input=["a", "b"], extra_body={"models": ["alt"]}, **kwargs
    )
    got = [item.embedding for item in response.data]
    if encoding_format == "base64":  # the SDK hands back what the client asked for
        got = [_unpack_float32(text) for text in got]  # type: ignore[arg-type]
    if encoding_format == "float":  # shortest decimals, as OpenAI writes them
        assert got == [[_exact_shortest_float32(v) for v in vector] for vector in vectors]
    else:  # the SDK asks for base64 by default and decodes it itself
        assert got == vectors
    assert list(seen[0].routing.models) == ["alt"]


# --- images -----------------------------------------------------------------------------------

_GPT_IMAGE_RESULT: dict[str, Any] = {
    "created": 1745954556,
    "data": [
        {"b64_json": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJ"}
    ],
    "background": "opaque",
    "output_format": "png",
    "quality": "high",
    "size": "1024x1024",
    "usage": {
        "input_tokens": 12,
        "input_tokens_details": {"image_tokens": 0, "text_tokens": 12},
        "output_tokens": 4160,
        "total_tokens": 4172,
    },
}
# gpt-image-1-mini and later also report output_tokens_details (ImageGenOutputTokensDetails).
_GPT_IMAGE_MINI_RESULT: dict[str, Any] = {
    **_GPT_IMAGE_RESULT,
    "usage": {
        "input_tokens": 12,
        "input_tokens_details": {"image_tokens": 0, "text_tokens": 12},
        "output_tokens": 4200,
        "output_tokens_details": {"image_tokens": 4160, "text_tokens": 40},
        "total_tokens": 4212,
    },
}
_DALL_E_3_RESULT: dict[str, Any] = {
    "created": 1698116662,
    "data": [
        {
            "url": "https://oaidalleapiprodscus.blob.core.windows.net/private/org-x/user-y/img-z.png?st=2023",
            "revised_prompt": "A photorealistic image of a baby sea otter floating on its back.",
        }
    ],
}
_DALL_E_2_RESULT: dict[str, Any] = {
    "created": 1589478378,
    "data": [{"url": "https://example.com/img-1.png"}, {"url": "https://example.com/img-2.png"}],
}


@pytest.mark.parametrize(
    "body", [_GPT_IMAGE_RESULT, _GPT_IMAGE_MINI_RESULT, _DALL_E_3_RESULT, _DALL_E_2_RESULT]
)
def test_images_result_is_byte_identical_to_openai(body: dict[str, Any]) -> None:
    encoded = encode_images_result(decode_images_result(body))
    assert encoded == orjson.dumps(body)
    assert_matches_schema(orjson.loads(encoded), "ImagesResponse")


def test_images_result_appends_cost_model_and_provider() -> None:
    result = decode_images_result(_GPT_IMAGE_RESULT)
    result.usage.cost = 0.167
    result.model = "gpt-image-1"
    result.provider = "openai"
    written = orjson.loads(encode_images_result(result))
    assert list(written)[-2:] == ["model", "provider"]
    assert list(written["usage"])[-1] == "cost" and written["usage"]["cost"] == 0.167
    assert_matches_schema(written, "ImagesResponse")


def test_images_result_usage_without_details_still_matches_the_schema() -> None:
    result = decode_images_result({"created": 1, "data": [], "usage": {"input_tokens": 3, "total_tokens": 3}})
    written = orjson.loads(encode_images_result(result))
    assert written["usage"]["input_tokens_details"] == {"image_tokens": 0, "text_tokens": 0}
    assert_matches_schema(written, "ImagesResponse")


def test_decode_image_request_reads_every_field_and_encodes_in_openai_order() -> None:
    body = {
        "model": "gpt-image-1",
        "prompt": "A cute baby sea otter",
        "n": 2,
        "quality": "high",
        "response_format": "b64_json",
        "output_format": "webp",
        "output_compression": 80,
        "size": "1024x1536",
        "moderation": "low",
        "background": "transparent",
        "style": "vivid",
        "user": "user-1234",
        "partial_images": 0,
        "stream": False,
        "models": ["flux-pro"],
        "provider": {"max_price": {"image": 0.2}},
        "seed": 42,
    }
    params = decode_image_request(body)
    assert params.routing.provider.max_price.image == 0.2
    assert struct_to_dict(params.extra_body) == {"seed": 42}
    upstream = encode_image_request(params, "gpt-image-1")
    expected = {k: v for k, v in body.items() if k not in ("stream", "models", "provider")}
    assert upstream == expected
    assert list(upstream) == list(expected)


def test_decode_image_request_leaves_unsent_fields_unset() -> None:
    params = decode_image_request({"prompt": "p", "model": "dall-e-3", "quality": None, "n": None})
    assert encode_image_request(params, "dall-e-3") == {"model": "dall-e-3", "prompt": "p"}
    assert not params.HasField("n") and not params.HasField("quality")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "dall-e-3"}, "prompt"),
        ({"model": "dall-e-3", "prompt": ""}, "prompt"),
        ({"prompt": "p"}, "model"),
        ({"prompt": "p", "model": None}, "model"),
        ({"prompt": "p", "model": "m", "n": 0}, "n"),
        ({"prompt": "p", "model": "m", "n": 11}, "n"),
        ({"prompt": "p", "model": "m", "n": "2"}, "n"),
        ({"prompt": "p", "model": "m", "response_format": "png"}, "response_format"),
        ({"prompt": "p", "model": "m", "output_compression": 101}, "output_compression"),
        ({"prompt": "p", "model": "m", "partial_images": 4}, "partial_images"),
        ({"prompt": "p", "model": "m", "quality": 1}, "quality"),
        ({"prompt": "p", "model": "m", "stream": True}, "stream"),
        ({"prompt": "p", "model": "m", "models": "m2"}, "models"),
    ],
)
def test_decode_image_request_names_the_bad_param(body: dict[str, Any], param: str) -> None:
    _assert_codec_error(checked(decode_image_request, check_image_params), body, param)


def test_images_extra_body_cannot_turn_on_streaming() -> None:
    params = decode_image_request(
        {"prompt": "p", "model": "m", "extra_body": {"stream": True, "prompt": "x"}}
    )
    assert encode_image_request(params, "m") == {"model": "m", "prompt": "p"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"created": "now"}, "created"),
        ({"created": 1, "data": {}}, "data"),
        ({"created": 1, "data": [{"url": 5}]}, "data[0].url"),
        ({"created": 1, "usage": {"input_tokens": "3"}}, "usage.input_tokens"),
    ],
)
def test_decode_images_result_names_the_bad_shape(body: dict[str, Any], param: str) -> None:
    _assert_codec_error(decode_images_result, body, param)


# --- videos -----------------------------------------------------------------------------------

_VIDEO_COMPLETED: dict[str, Any] = {
    "id": "video_68d7512d07848190b3e45da0ecbebcde004da08e1e0678d5",
    "object": "video",
    "created_at": 1758941485,
    "status": "completed",
    "completed_at": 1758941592,
    "error": None,
    "expires_at": 1759027992,
    "model": "sora-2",
    "progress": 100,
    "prompt": "A calico cat playing a piano on stage",
    "remixed_from_video_id": None,
    "seconds": "8",
    "size": "1280x720",
}
_VIDEO_QUEUED: dict[str, Any] = {
    **_VIDEO_COMPLETED,
    "status": "queued",
    "completed_at": None,
    "expires_at": None,
    "progress": 0,
}
_VIDEO_FAILED: dict[str, Any] = {
    **_VIDEO_COMPLETED,
    "status": "failed",
    "completed_at": None,
    "error": {"code": "moderation_blocked", "message": "Your request was blocked by our moderation system."},
    "expires_at": None,
    "progress": 40,
    "prompt": None,
    "remixed_from_video_id": "video_123",
}


@pytest.mark.parametrize("body", [_VIDEO_COMPLETED, _VIDEO_QUEUED, _VIDEO_FAILED])
def test_video_is_byte_identical_to_openai(body: dict[str, Any]) -> None:
    encoded = encode_video(decode_video(body))
    assert encoded == orjson.dumps(body)
    assert_matches_schema(orjson.loads(encoded), "VideoResource")


def test_video_writes_nulls_for_unset_fields_and_provider_last() -> None:
    video = videos_pb2.Video(
        id="video_1",
        model="veo-3",
        status="queued",
        created_at=1,
        size="1280x720",
        seconds="8",
        provider="google",
    )
    written = orjson.loads(encode_video(video))
    assert list(written) == [*_VIDEO_COMPLETED, "provider"]
    assert written["completed_at"] is None and written["error"] is None and written["prompt"] is None
    assert_matches_schema(written, "VideoResource")


def test_decode_video_accepts_numeric_seconds_and_fractional_progress() -> None:
    video = decode_video({"id": "v", "status": "in_progress", "seconds": 8, "progress": 37.5})
    assert (video.seconds, video.progress, video.object) == ("8", 37, "video")
    _assert_codec_error(decode_video, {"status": "queued"}, "id")
    _assert_codec_error(decode_video, {"id": "v", "progress": 150}, "progress")
    _assert_codec_error(decode_video, {"id": "v", "error": "boom"}, "error")


def test_decode_video_request_reads_every_field() -> None:
    params = decode_video_request(
        {
            "model": "sora-2-pro",
            "prompt": "A calico cat playing a piano",
            "seconds": 12,
            "size": "1792x1024",
            "input_reference": {"image_url": "https://example.com/first-frame.png"},
            "models": ["veo-3"],
            "provider": {"require_parameters": True},
            "aspect_ratio": "16:9",
        }
    )
    assert (params.model, params.seconds, params.size) == ("sora-2-pro", "12", "1792x1024")
    assert params.input_reference.image_url == "https://example.com/first-frame.png"
    assert list(params.routing.models) == ["veo-3"]
    assert params.routing.provider.require_parameters is True
    assert encode_video_request(params, "sora-2-pro") == {
        "model": "sora-2-pro",
        "prompt": "A calico cat playing a piano",
        "seconds": "12",
        "size": "1792x1024",
        "input_reference": {"image_url": "https://example.com/first-frame.png"},
        "aspect_ratio": "16:9",
    }


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ({"file_id": "file-abc123"}, {"file_id": "file-abc123"}),
        ("data:image/png;base64,iVBORw0KGgo=", {"image_url": "data:image/png;base64,iVBORw0KGgo="}),
        (
            {"image_url": "data:image/png;base64,iVBORw0KGgo="},
            {"image_url": "data:image/png;base64,iVBORw0KGgo="},
        ),
    ],
)
def test_video_input_reference_forms(reference: Any, expected: dict[str, str]) -> None:
    params = decode_video_request({"model": "sora-2", "prompt": "p", "input_reference": reference})
    assert encode_video_request(params, "sora-2")["input_reference"] == expected


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "p"}, "model"),
        ({"model": "", "prompt": "p"}, "model"),
        ({"model": "sora-2"}, "prompt"),
        ({"model": "sora-2", "prompt": ""}, "prompt"),
        ({"model": "sora-2", "prompt": "p", "seconds": "4s"}, "seconds"),
        ({"model": "sora-2", "prompt": "p", "seconds": 0}, "seconds"),
        ({"model": "sora-2", "prompt": "p", "seconds": True}, "seconds"),
        ({"model": "sora-2", "prompt": "p", "size": 720}, "size"),
        ({"model": "sora-2", "prompt": "p", "input_reference": {}}, "input_reference"),
        (
            {"model": "sora-2", "prompt": "p", "input_reference": {"image_url": "u", "file_id": "f"}},
            "input_reference",
        ),
        ({"model": "sora-2", "prompt": "p", "input_reference": {"url": "u"}}, "input_reference.url"),
        ({"model": "sora-2", "prompt": "p", "input_reference": {"file_id": 1}}, "input_reference.file_id"),
        ({"model": "sora-2", "prompt": "p", "input_reference": "file-abc123"}, "input_reference"),
        ({"model": "sora-2", "prompt": "p", "input_reference": 5}, "input_reference"),
    ],
)
def test_decode_video_request_names_the_bad_param(body: dict[str, Any], param: str) -> None:
    _assert_codec_error(checked(decode_video_request, check_video_params), body, param)


def test_decode_video_form_validates_like_json() -> None:
    form = checked(lambda f: decode_video_form(f, None), check_video_params)
    with_upload = checked(lambda f: decode_video_form(f, (PNG, "image/png")), check_video_params)
    _assert_codec_error(form, {"prompt": "p"}, "model")
    _assert_codec_error(form, {"model": "m", "prompt": "p", "seconds": "x"}, "seconds")
    _assert_codec_error(with_upload, {"model": "m"}, "prompt")
    _assert_codec_error(
        with_upload,
        {"model": "m", "prompt": "p", "input_reference[file_id]": "file-1"},
        "input_reference",
    )
    _assert_codec_error(
        lambda f: decode_video_form(f, (b"", "image/png")), {"model": "m", "prompt": "p"}, "input_reference"
    )
    _assert_codec_error(
        lambda f: decode_video_form(f, None),
        {"model": "m", "prompt": "p", "provider[allow_fallbacks]": "maybe"},
        "provider.allow_fallbacks",
    )
    _assert_codec_error(
        lambda f: decode_video_form(f, None), {"model": "m", "prompt": "p", "provider": "{"}, "provider"
    )


def test_decode_video_form_accepts_json_text_and_sniffs_untyped_uploads() -> None:
    fields = {
        "model": "sora-2",
        "prompt": "p",
        "models": '["veo-3", "kling-2"]',
        "provider": '{"order": ["openai"], "max_price": {"video_second": 0.3}}',
    }
    params = decode_video_form(fields, (PNG, "application/octet-stream"))
    assert list(params.routing.models) == ["veo-3", "kling-2"]
    assert params.routing.provider.max_price.video_second == 0.3
    assert params.input_reference.mime_type == "image/png"
    reference = encode_video_request(params, "sora-2")["input_reference"]
    assert reference == {"image_url": "data:image/png;base64," + base64.b64encode(PNG).decode()}


def _parse_multipart(request: httpx.Request) -> tuple[MultiDict[str], tuple[bytes, str] | None]:
    head = b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n"
    message = email.message_from_bytes(head + request.read(), policy=email.policy.HTTP)
    fields: MultiDict[str] = MultiDict()
    upload = None
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        if part.get_filename() is not None:
            upload = (payload, part.get_content_type())
        else:
            fields.add(str(part.get_param("name", header="content-disposition")), payload.decode())
    return fields, upload


def test_openai_sdk_multipart_video_round_trip() -> None:
    seen: list[videos_pb2.VideoParams] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        params = decode_video_form(*_parse_multipart(request))
        seen.append(params)
        video = videos_pb2.Video(
            id="video_abc",
            model=params.model,
            status="queued",
            created_at=1758941485,
            prompt=params.prompt,
            seconds=params.seconds,
            size=params.size,
            provider="openai",
        )
        return httpx.Response(200, content=encode_video(video), headers={"content-type": "application/json"})

    client = openai.OpenAI(
        api_key="sk-test",
        base_url="http://gateway.test/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(gateway)),
    )
    video = client.videos.create(
        model="sora-2",
        prompt="A calico cat playing a piano",
        seconds="8",
        size="1280x720",
        input_reference=("frame.png", PNG, "image/png"),
        extra_body={
            "models": ["veo-3", "kling-2"],
            "provider": {
                "order": ["openai", "azure"],
                "allow_fallbacks": False,
                "max_price": {"video_second": 0.5},
            },
            "negative_prompt": "blur",
        },
    )
    assert (video.id, video.status, video.seconds, video.size) == ("video_abc", "queued", "8", "1280x720")
    params = seen[0]
    assert (params.model, params.prompt, params.seconds, params.size) == (
        "sora-2",
        "A calico cat playing a piano",
        "8",
        "1280x720",
    )
    assert (params.input_reference.data, params.input_reference.mime_type) == (PNG, "image/png")
    assert list(params.routing.models) == ["veo-3", "kling-2"]
    provider = params.routing.provider
    assert list(provider.order) == ["openai", "azure"]
    assert provider.HasField("allow_fallbacks") and provider.allow_fallbacks is False
    assert provider.max_price.video_second == 0.5
    assert struct_to_dict(params.extra_body) == {"negative_prompt": "blur"}


def test_decode_video_form_rebuilds_sdk_bracket_fields() -> None:
    # What the OpenAI SDK's "brackets" form encoding makes of nested extra_body values.
    fields: MultiDict[str] = MultiDict(
        [
            ("prompt", "p"),
            ("model", "sora-2"),
            ("input_reference[file_id]", "file-abc123"),
            ("models[]", "veo-3"),
            ("models[]", "kling-2"),
            ("provider[only][]", "openai"),
            ("provider[require_parameters]", "true"),
            ("provider[max_price][video_second]", "0.25"),
            ("metadata[team]", "video"),
        ]
    )
    params = decode_video_form(fields, None)
    assert params.input_reference.file_id == "file-abc123"
    assert list(params.routing.models) == ["veo-3", "kling-2"]
    assert list(params.routing.provider.only) == ["openai"]
    assert params.routing.provider.require_parameters is True
    assert params.routing.provider.max_price.video_second == 0.25
    assert struct_to_dict(params.extra_body) == {"metadata": {"team": "video"}}
    for bad in ("models[][x]", "[x]", "provider[order"):
        _assert_codec_error(
            lambda f: decode_video_form(f, None), {"model": "m", "prompt": "p", bad: "v"}, bad
        )


# --- models -----------------------------------------------------------------------------------


def test_encode_model_writes_openai_keys_then_catalogue_fields() -> None:
    model = models_pb2.Model(
        id="gpt-4o-mini",
        object="model",
        created=1721172741,
        owned_by="openai",
        kind=models_pb2.MODEL_KIND_CHAT,
        context_window=128000,
        pricing=models_pb2.ModelPricing(input_per_million=0.15, output_per_million=0.6),
        supported_parameters=["temperature", "tools"],
    )
    assert encode_model_bytes(model) == orjson.dumps(
        {
            "id": "gpt-4o-mini",
            "object": "model",
            "created": 1721172741,
            "owned_by": "openai",
            "type": "chat",
            "context_window": 128000,
            "pricing": {"input_per_million": 0.15, "output_per_million": 0.6},
            "supported_parameters": ["temperature", "tools"],
        }
    )
    assert_matches_schema(encode_model(model), "Model")


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        (models_pb2.MODEL_KIND_EMBEDDING, "embedding"),
        (models_pb2.MODEL_KIND_IMAGE, "image"),
        (models_pb2.MODEL_KIND_VIDEO, "video"),
    ],
)
def test_encode_model_kinds(kind: models_pb2.ModelKind, name: str) -> None:
    model = models_pb2.Model(id="m", created=1, owned_by="x", kind=kind)
    assert encode_model(model)["type"] == name


def test_encode_model_skips_unknown_fields() -> None:
    model = models_pb2.Model(id="m", created=1, owned_by="x", pricing=models_pb2.ModelPricing(per_image=0.04))
    assert encode_model(model) == {
        "id": "m",
        "object": "model",
        "created": 1,
        "owned_by": "x",
        "pricing": {"per_image": 0.04},
        "supported_parameters": [],
    }


def test_encode_model_list() -> None:
    models = [
        models_pb2.Model(id="text-embedding-3-small", created=1705948997, owned_by="openai"),
        models_pb2.Model(
            id="sora-2",
            created=1759708615,
            owned_by="openai",
            kind=models_pb2.MODEL_KIND_VIDEO,
            pricing=models_pb2.ModelPricing(per_video_second=0.1),
        ),
    ]
    written = orjson.loads(encode_model_list(models))
    assert list(written) == ["object", "data"] and written["object"] == "list"
    assert [m["id"] for m in written["data"]] == ["text-embedding-3-small", "sora-2"]
    assert_matches_schema(written, "ListModelsResponse")
    assert orjson.loads(encode_model_list([])) == {"object": "list", "data": []}
