"""The bounds table (siraya/router/codec/bounds.py): every bounded field, its edges, and NaN."""

from __future__ import annotations

import math

import pytest
from google.protobuf.descriptor import FieldDescriptor

from siraya.router.codec.bounds import (
    CHAT_BOUNDS,
    EMBEDDING_BOUNDS,
    RESPONSE_BOUNDS,
    check_chat,
    check_embedding,
    check_response,
)
from siraya.router.codec.errors import CodecError
from siraya.router.v1 import chat_pb2, embeddings_pb2, responses_pb2

_REAL = (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE)
CASES = [
    *((chat_pb2.ChatCompletionParams, check_chat, bound) for bound in CHAT_BOUNDS),
    *((responses_pb2.ResponseParams, check_response, bound) for bound in RESPONSE_BOUNDS),
    *((embeddings_pb2.EmbeddingParams, check_embedding, bound) for bound in EMBEDDING_BOUNDS),
]


@pytest.mark.parametrize(
    ("message", "check", "bound"), CASES, ids=[f"{c[0].__name__}.{c[2][0]}" for c in CASES]
)
def test_each_bound_accepts_its_edges_and_refuses_past_them(message, check, bound) -> None:  # type: ignore[no-untyped-def]
    name, low, high = bound
    integer = message.DESCRIPTOR.fields_by_name[name].cpp_type not in _REAL
    step = 1 if integer else 0.25
    for value in (low, high):
        check(message(**{name: value}))
    for value, side in ((low - step, "below_min"), (high + step, "above_max")):
        with pytest.raises(CodecError) as refused:
            check(message(**{name: value}))
        assert refused.value.param == name
        assert refused.value.code == f"{'integer' if integer else 'decimal'}_{side}_value"
    check(message())  # unset is fine


def test_nan_and_infinity_are_refused() -> None:
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(CodecError) as refused:
            check_chat(chat_pb2.ChatCompletionParams(temperature=value))
        assert refused.value.param == "temperature"


def test_logit_bias_values_and_size_are_bounded() -> None:
    check_chat(chat_pb2.ChatCompletionParams(logit_bias={"1": -100, "2": 100}))
    with pytest.raises(CodecError) as refused:
        check_chat(chat_pb2.ChatCompletionParams(logit_bias={"1": 0, "42": -101}))
    assert (refused.value.param, refused.value.code) == ("logit_bias.42", "integer_below_min_value")
    with pytest.raises(CodecError) as refused:
        check_chat(chat_pb2.ChatCompletionParams(logit_bias={str(i): 0 for i in range(1025)}))
    assert (refused.value.param, refused.value.code) == ("logit_bias", "array_above_max_length")
