"""Legacy completions JSON <-> CompletionParams / Completion (siraya/router/codec/completions.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from siraya.router.codec.completions import completion_object, decode_completion_request, encode_completion
from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import struct_to_dict
from siraya.router.v1 import common_pb2, completions_pb2
from tests.openapi_schema import assert_matches_schema


def test_every_documented_field_is_decoded() -> None:
    params = decode_completion_request(
        {
            "model": "m",
            "prompt": "hi",
            "suffix": "",
            "max_tokens": 7,
            "temperature": 0.5,
            "top_p": 0.25,
            "n": 3,
            "stop": "\n",
            "seed": 2**40,
            "logprobs": 2,
            "echo": True,
            "presence_penalty": 1,
            "frequency_penalty": -1,
            "logit_bias": {"50256": -100},
            "user": "u",
            "best_of": 3,
            "stream": True,
            "stream_options": {"include_usage": True},
            "models": ["fallback"],
            "top_k": 5,
        }
    )
    assert params.text == "hi" and params.HasField("suffix") and params.suffix == ""
    assert (params.max_tokens, params.n, params.logprobs, params.best_of, params.seed) == (7, 3, 2, 3, 2**40)
    assert (params.temperature, params.top_p, params.presence_penalty, params.frequency_penalty) == (
        0.5,
        0.25,
        1.0,
        -1.0,
    )
    assert list(params.stop) == ["\n"] and dict(params.logit_bias) == {"50256": -100}
    assert params.echo and params.stream and params.stream_options.include_usage and params.user == "u"
    assert list(params.routing.models) == ["fallback"]
    assert struct_to_dict(params.extra_body) == {"top_k": 5}


def test_unset_fields_stay_unset() -> None:
    params = decode_completion_request({"model": "m", "prompt": "hi"})
    for name in ("max_tokens", "temperature", "n", "logprobs", "echo", "best_of", "suffix", "stream_options"):
        assert not params.HasField(name), name


@pytest.mark.parametrize(
    ("prompt", "kind", "values"),
    [
        ("text", "text", "text"),
        (["a", "b"], "texts", ["a", "b"]),
        ([], "texts", []),
        ([1, 2, 3], "tokens", [1, 2, 3]),
        ([[1], [2, 3]], "token_lists", [[1], [2, 3]]),
    ],
)
def test_prompt_shapes(prompt: Any, kind: str, values: Any) -> None:
    params = decode_completion_request({"model": "m", "prompt": prompt})
    assert params.WhichOneof("prompt") == kind
    if kind == "text":
        assert params.text == values
    elif kind == "token_lists":
        assert [list(ids.values) for ids in params.token_lists.values] == values
    else:
        assert list(getattr(params, kind).values) == values


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({}, "prompt", "missing_required_parameter"),
        ({"prompt": None}, "prompt", "missing_required_parameter"),
        ({"prompt": 3}, "prompt", "invalid_type"),
        ({"prompt": ["a", 1]}, "prompt[1]", "invalid_value"),
        ({"prompt": [1, "a"]}, "prompt[1]", "invalid_value"),
        ({"prompt": [1, True]}, "prompt[1]", "invalid_value"),
        ({"prompt": [[1], 2]}, "prompt[1]", "invalid_value"),
        ({"prompt": [[1, "x"]]}, "prompt[0][1]", "invalid_value"),
        ({"prompt": [{"a": 1}]}, "prompt[0]", "invalid_value"),
        ({"prompt": "x", "max_tokens": "many"}, "max_tokens", "invalid_type"),
        ({"prompt": "x", "max_tokens": 2**31}, "max_tokens", "invalid_value"),
        ({"prompt": "x", "stop": 1}, "stop", "invalid_type"),
        ({"prompt": "x", "stop": ["a", 1]}, "stop[1]", "invalid_type"),
        ({"prompt": "x", "logit_bias": {"1": "a"}}, "logit_bias.1", "invalid_type"),
        ({"prompt": "x", "echo": "yes"}, "echo", "invalid_type"),
        (
            {"prompt": "x", "stream_options": {"include_usage": 1}},
            "stream_options.include_usage",
            "invalid_type",
        ),
    ],
)
def test_shape_errors_name_the_field(body: dict[str, Any], param: str, code: str) -> None:
    with pytest.raises(CodecError) as caught:
        decode_completion_request({"model": "m", **body})
    assert (caught.value.param, caught.value.code) == (param, code)


def _completion() -> completions_pb2.Completion:
    completion = completions_pb2.Completion(
        id="cmpl-1", object="text_completion", created=5, model="m", provider="p", system_fingerprint="fp"
    )
    choice = completion.choices.add(index=0, text="hi", finish_reason="length")
    choice.logprobs.tokens.extend(["h", "i"])
    choice.logprobs.token_logprobs.extend([-0.5, -0.25])
    for pairs in ((("h", -0.5), ("x", -2.0)), (("i", -0.25),)):
        choice.logprobs.top_logprobs.add().entries.extend(
            completions_pb2.CompletionTopLogprob(token=token, logprob=logprob) for token, logprob in pairs
        )
    choice.logprobs.text_offset.extend([3, 4])
    completion.choices.add(index=1, text="")
    completion.usage.CopyFrom(
        common_pb2.Usage(prompt_tokens=2, completion_tokens=3, total_tokens=5, cost=0.5)
    )
    return completion


def test_encoded_completion_is_openais_shape() -> None:
    body = orjson.loads(encode_completion(_completion()))
    assert list(body) == [
        "id",
        "object",
        "created",
        "model",
        "choices",
        "system_fingerprint",
        "usage",
        "provider",
    ]
    first, second = body["choices"]
    assert list(first) == ["text", "index", "logprobs", "finish_reason"]
    assert first["logprobs"] == {
        "tokens": ["h", "i"],
        "token_logprobs": [-0.5, -0.25],
        "top_logprobs": [{"h": -0.5, "x": -2.0}, {"i": -0.25}],
        "text_offset": [3, 4],
    }
    assert list(first["logprobs"]["top_logprobs"][0]) == ["h", "x"]
    assert second == {"text": "", "index": 1, "logprobs": None, "finish_reason": None}
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5, "cost": 0.5}
    second["finish_reason"] = "stop"
    assert_matches_schema(body, "CreateCompletionResponse")


def test_a_chunk_without_usage_has_no_usage_key() -> None:
    chunk = completions_pb2.Completion(id="cmpl-1", object="text_completion", created=1, model="m")
    chunk.choices.add(index=0, text="x")
    assert "usage" not in completion_object(chunk) and "provider" not in completion_object(chunk)
