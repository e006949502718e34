"""normalize_chat_chunk and normalize_chat_completion must write exactly what the proto round trip
writes, for every input.

The bridge relays OpenAI-protocol answers through them (no proto); gRPC clients get the proto. A
client must not be able to tell the two apart, so each case compares the two JSON encodings byte
for byte, or checks that both refuse the body.
"""

from __future__ import annotations

import copy
import random
import warnings
from typing import Any

import orjson
import pytest

from server.accounts.metering import Consumption
from server.gateway_usage import chunk_is_final, chunk_is_final_json, fold_chunk, fold_chunk_json
from siraya.router.codec.chat import (
    decode_chat_chunk,
    decode_chat_completion,
    encode_chat_chunk,
    encode_chat_completion,
    normalize_chat_chunk,
    normalize_chat_completion,
)
from siraya.router.codec.errors import CodecError

# The random shapes include booleans where the proto wants integers; protobuf accepts them with a
# DeprecationWarning, and the comparison is about what both paths write, so those warnings are noise.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

BASE: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1_700_000_000,
    "model": "gpt-4o-mini",
    "system_fingerprint": "fp_1",
    "choices": [{"index": 0, "delta": {"content": "Hel"}, "logprobs": None, "finish_reason": None}],
}


def _with(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(BASE)
    body.update(changes)
    return body


def _choice(**changes: Any) -> dict[str, Any]:
    choice = copy.deepcopy(BASE["choices"][0])
    choice.update(changes)
    return _with(choices=[choice])


CASES: list[Any] = [
    BASE,
    _with(system_fingerprint=None),
    _with(service_tier="default", obfuscation="xyz"),
    _with(id=None, model=None),
    _with(created=1.5),
    _with(created=None),
    _with(created=True),
    _with(created=2**63),
    _with(choices=[]),
    _with(usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}),
    _with(
        choices=[],
        usage={
            "prompt_tokens": 3,
            "completion_tokens": 4,
            "total_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 1},
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
    ),
    _with(usage=None),
    _with(provider="elsewhere", extra_field={"a": 1}),
    _choice(delta={"role": "assistant", "content": ""}),
    _choice(delta={"content": "x", "role": "assistant", "refusal": None}),
    _choice(delta={"reasoning_content": "think"}),
    _choice(delta={"reasoning": "a", "reasoning_content": "b"}),
    _choice(delta={"reasoning": "a", "content": "b", "refusal": "c", "role": "assistant"}),
    _choice(delta={"audio": {"id": "x"}, "content": "y"}),
    _choice(delta={}),
    _choice(delta=None),
    _choice(delta="text"),
    _choice(delta={"content": 5}),
    _choice(
        delta={
            "tool_calls": [
                {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"'}}
            ]
        }
    ),
    _choice(delta={"tool_calls": [{"index": 0, "custom": {"name": "g", "input": "raw"}}]}),
    _choice(delta={"function_call": {"name": "f", "arguments": "{}"}}),
    _choice(delta={"tool_calls": None, "content": "z"}),
    _choice(finish_reason="stop", delta={}),
    _choice(finish_reason=""),
    _choice(finish_reason=3),
    _choice(index=None),
    _choice(index=2),
    _choice(index=-1),
    _choice(index=2**31),
    _choice(index="0"),
    _choice(logprobs={"content": [{"token": "H", "logprob": -0.1, "bytes": [72], "top_logprobs": []}]}),
    _with(choices=[{"index": 0, "delta": {"content": "a"}}, {"index": 1, "delta": {"content": "b"}}]),
    _with(choices=["not an object"]),
    _with(choices="nope"),
    _with(id=7),
    _with(model=["m"]),
    _with(system_fingerprint=5),
    "not an object",
    None,
]


def _both(body: Any, include_usage: bool) -> tuple[bytes | type[CodecError], bytes | type[CodecError]]:
    try:
        through_proto: bytes | type[CodecError] = encode_chat_chunk(decode_chat_chunk(body), include_usage)
    except CodecError:
        through_proto = CodecError
    try:
        normalized: bytes | type[CodecError] = orjson.dumps(normalize_chat_chunk(body, include_usage))
    except CodecError:
        normalized = CodecError
    return through_proto, normalized


@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize("body", CASES)
def test_normalized_chunk_is_the_proto_round_trip(body: Any, include_usage: bool) -> None:
    through_proto, normalized = _both(body, include_usage)
    assert normalized == through_proto


def test_a_plain_text_chunk_keeps_its_text_and_drops_unknown_keys() -> None:
    body = _with(provider="elsewhere", extra_field=1)
    normalized = normalize_chat_chunk(body, True)
    assert normalized["choices"][0]["delta"] == {"content": "Hel"}
    assert normalized["usage"] is None
    assert "extra_field" not in normalized and "provider" not in normalized


_VALUES: list[Any] = [None, "", "s", 0, 1, -1, 2**31, 1.5, True, [], {}, ["x"], {"k": "v"}]
_DELTA_KEYS = ["role", "content", "refusal", "reasoning", "reasoning_content", "tool_calls", "audio"]
_CHOICE_KEYS = ["index", "finish_reason", "logprobs", "delta"]
_ROOT_KEYS = ["id", "created", "model", "system_fingerprint", "service_tier", "obfuscation", "usage"]


def _value(rng: random.Random) -> Any:
    return copy.deepcopy(rng.choice(_VALUES))  # a fresh copy: the shapes below are mutated


def _random_chunk(rng: random.Random) -> dict[str, Any]:
    body = copy.deepcopy(BASE)
    for key in rng.sample(_ROOT_KEYS, rng.randint(0, 2)):
        body[key] = _value(rng)
    choices = []
    for _ in range(rng.randint(0, 2)):
        choice: dict[str, Any] = {"index": 0, "delta": {"content": "t"}, "finish_reason": None}
        for key in rng.sample(_CHOICE_KEYS, rng.randint(0, 2)):
            choice[key] = _value(rng)
        if isinstance(choice.get("delta"), dict):
            for key in rng.sample(_DELTA_KEYS, rng.randint(0, 3)):
                choice["delta"][key] = _value(rng)
        choices.append(choice)
    body["choices"] = choices
    return body


def test_random_shapes_agree_with_the_proto_round_trip() -> None:
    rng = random.Random(20261126)
    disagreements = []
    for _ in range(3000):
        body = _random_chunk(rng)
        for include_usage in (False, True):
            through_proto, normalized = _both(body, include_usage)
            if normalized != through_proto:
                disagreements.append((body, include_usage, through_proto, normalized))
    assert disagreements == []


def _decodable(body: Any) -> bool:
    # Runs at collection, outside the module's warning filter.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            decode_chat_chunk(body)
        except CodecError:
            return False
    return True


@pytest.mark.parametrize("body", [case for case in CASES if _decodable(case)])
def test_usage_is_read_the_same_from_the_json_object_and_the_proto(body: Any) -> None:
    chunk = decode_chat_chunk(body)
    normalized = normalize_chat_chunk(body, True)
    from_proto, from_json = Consumption(), Consumption()
    usage = fold_chunk(chunk, from_proto)
    usage_json = fold_chunk_json(normalized, from_json)
    assert from_json == from_proto
    assert (usage_json is None) == (usage is None)
    if usage is not None:
        assert usage_json == orjson.loads(encode_chat_chunk(chunk))["usage"]
        assert chunk_is_final_json(normalized) == chunk_is_final(chunk)


def test_text_deltas_count_as_tokens_until_usage_arrives() -> None:
    total = Consumption()
    fold_chunk_json(normalize_chat_chunk(_choice(delta={"content": "x" * 40})), total)
    fold_chunk_json(normalize_chat_chunk(_choice(delta={"reasoning_content": "y" * 8})), total)
    assert total.completion_tokens == 12
    usage = {
        "prompt_tokens": 5,
        "completion_tokens": 7,
        "total_tokens": 12,
        "prompt_tokens_details": {"cached_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 3},
    }
    fold_chunk_json(normalize_chat_chunk(_with(choices=[], usage=usage)), total)
    assert (total.prompt_tokens, total.completion_tokens, total.cached_tokens, total.reasoning_tokens) == (
        5,
        7,
        2,
        3,
    )


COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-2",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hi", "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 9,
        "completion_tokens": 2,
        "total_tokens": 11,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_2",
}


def _completion(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(COMPLETION)
    body.update(changes)
    return body


def _answer(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(COMPLETION)
    body["choices"][0]["message"].update(changes)
    return body


def _usage(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(COMPLETION)
    body["usage"].update(changes)
    return body


COMPLETIONS: list[Any] = [
    COMPLETION,
    _completion(usage=None, service_tier=None, system_fingerprint=None),
    _completion(obfuscation="x", provider="elsewhere", object="other"),
    _completion(created=2.0),
    _completion(id=None, model=None),
    _completion(choices=[]),
    _completion(choices=[{"index": 0, "message": {"content": "a"}, "finish_reason": ""}]),
    _completion(
        choices=[{"message": {"content": "a"}}, {"message": {"content": "b"}, "finish_reason": None}]
    ),
    _completion(choices=[{"index": 0, "finish_reason": "stop"}]),
    _completion(choices=[{"index": 0, "message": "text"}]),
    _completion(choices=[{"index": 0, "message": {"content": "a"}, "logprobs": {"content": []}}]),
    _completion(choices=[{"index": "1", "message": {"content": "a"}}]),
    _completion(choices=[{"index": 0, "message": {"content": "a"}, "finish_reason": 1}]),
    _answer(role=None),
    _answer(role=1),
    _answer(content=None, refusal="no"),
    _answer(content=""),
    _answer(content=[{"type": "text", "text": "part"}, {"type": "image"}]),
    _answer(content=3),
    _answer(reasoning="why"),
    _answer(reasoning_content="why"),
    _answer(reasoning=None, reasoning_content="why"),
    _answer(reasoning=5),
    _answer(tool_calls=[{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]),
    _answer(tool_calls=[]),
    _answer(annotations=[{"type": "url_citation", "url_citation": {"url": "https://a"}}]),
    _answer(audio={"id": "audio_1", "data": "UklG"}),
    _answer(function_call={"name": "f", "arguments": "{}"}),
    _answer(extra="ignored"),
    _usage(prompt_tokens=None, total_tokens=False),
    _usage(prompt_tokens=1.0),
    _usage(prompt_tokens="9"),
    _usage(prompt_tokens=2**40),
    _usage(prompt_tokens_details=None, completion_tokens_details=None),
    _usage(prompt_tokens_details={"cached_tokens": 4, "cache_write_tokens": 2}),
    _usage(prompt_tokens_details={"cached_tokens": None}),
    _usage(prompt_tokens_details={"cached_tokens": "4"}),
    _usage(prompt_tokens_details=[]),
    _usage(completion_tokens_details={"reasoning_tokens": 7}),
    _usage(completion_tokens_details={"reasoning_tokens": True}),
    _completion(usage="none"),
    _completion(choices=None),
    [],
]


def _both_completion(body: Any) -> tuple[bytes | type[CodecError], bytes | type[CodecError]]:
    try:
        through_proto: bytes | type[CodecError] = encode_chat_completion(decode_chat_completion(body))
    except CodecError:
        through_proto = CodecError
    try:
        normalized: bytes | type[CodecError] = orjson.dumps(normalize_chat_completion(body))
    except CodecError:
        normalized = CodecError
    return through_proto, normalized


@pytest.mark.parametrize("body", COMPLETIONS)
def test_normalized_completion_is_the_proto_round_trip(body: Any) -> None:
    through_proto, normalized = _both_completion(body)
    assert normalized == through_proto


def test_a_plain_answer_keeps_its_text() -> None:
    normalized = normalize_chat_completion(COMPLETION)
    assert normalized["choices"][0]["message"] == {"role": "assistant", "content": "Hi", "refusal": None}
    assert list(normalized)[-3:] == ["usage", "service_tier", "system_fingerprint"]


def _random_completion(rng: random.Random) -> dict[str, Any]:
    body = copy.deepcopy(COMPLETION)
    for key in rng.sample(_ROOT_KEYS, rng.randint(0, 2)):
        body[key] = _value(rng)
    message = body["choices"][0]["message"]
    for key in rng.sample(
        [
            "role",
            "content",
            "refusal",
            "reasoning",
            "reasoning_content",
            "tool_calls",
            "annotations",
            "audio",
            "function_call",
        ],
        rng.randint(0, 3),
    ):
        message[key] = _value(rng)
    usage = body.get("usage")
    if isinstance(usage, dict):
        for key in rng.sample(
            ["prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details"],
            rng.randint(0, 2),
        ):
            usage[key] = _value(rng)
    return body


def test_random_completions_agree_with_the_proto_round_trip() -> None:
    rng = random.Random(11262026)
    disagreements = []
    for _ in range(3000):
        body = _random_completion(rng)
        through_proto, normalized = _both_completion(body)
        if normalized != through_proto:
            disagreements.append((body, through_proto, normalized))
    assert disagreements == []
