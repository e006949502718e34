"""The chat codec: client JSON -> proto -> upstream JSON, and upstream JSON -> proto -> client bytes."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from siraya.router.codec import chat
from siraya.router.codec.chat import (
    decode_chat_chunk,
    decode_chat_completion,
    decode_chat_request,
    encode_chat_chunk,
    encode_chat_completion,
    encode_chat_request,
)
from siraya.router.codec.errors import CodecError
from siraya.router.codec.validate import check_chat_params
from siraya.router.v1 import chat_pb2
from tests.openapi_schema import assert_matches_schema

PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "scores": {"type": "array", "items": {"type": "number"}, "maxItems": 3},
        "address": {
            "type": "object",
            "properties": {"zip": {"type": "string"}, "floor": {"type": ["integer", "null"]}},
            "required": ["zip", "floor"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "age", "scores", "address"],
    "additionalProperties": False,
}


def decode_checked(body: Any) -> chat_pb2.ChatCompletionParams:
    """What a REST body meets: the decoder's JSON checks, then the request rules every servicer applies."""
    params = decode_chat_request(body)
    check_chat_params(params)
    return params


RICH_REQUEST: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You are terse.", "name": "house-rules"},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in JSON."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                {
                    "type": "file",
                    "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"},
                },
                {"type": "file", "file": {"file_id": "file-abc123"}},
            ],
            "name": "alice",
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris","days":2}'},
                },
                {"id": "call_2", "type": "custom", "custom": {"name": "run_sql", "input": "SELECT 1"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "1"}]},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Partly: "}, {"type": "refusal", "refusal": "no more"}],
            "refusal": "no more",
            "name": "bot",
        },
        {"role": "assistant", "content": None, "audio": {"id": "audio_abc"}},
        {"role": "assistant", "content": None, "function_call": {"name": "lookup", "arguments": "{}"}},
        {"role": "function", "name": "lookup", "content": "42"},
        {"role": "user", "content": ""},
    ],
    "temperature": 0,
    "top_p": 0.9,
    "n": 2,
    "stop": "END",
    "max_tokens": 512,
    "max_completion_tokens": 1024,
    "presence_penalty": -0.5,
    "frequency_penalty": 1.25,
    "logit_bias": {"50256": -100, "1234": 7},
    "logprobs": True,
    "top_logprobs": 3,
    "seed": 2**40 + 1,
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
                    "required": ["city", "days"],
                },
                "strict": True,
            },
        },
        {"type": "function", "function": {"name": "no_args"}},
        {
            "type": "custom",
            "custom": {
                "name": "run_sql",
                "description": "Run one query",
                "format": {"type": "grammar", "grammar": {"definition": "start: /.+/", "syntax": "lark"}},
            },
        },
    ],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "parallel_tool_calls": False,
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "person", "description": "A person", "schema": PERSON_SCHEMA, "strict": True},
    },
    "user": "user-42",
    "metadata": {"team": "search", "ticket": "T-1"},
    "reasoning_effort": "low",
    "modalities": ["text", "audio"],
    "stream_options": {"include_usage": True, "include_obfuscation": False},
    "service_tier": "flex",
    "store": False,
    "audio": {"voice": "alloy", "format": "mp3"},
    "prediction": {"type": "content", "content": [{"type": "text", "text": "draft"}]},
    "web_search_options": {
        "search_context_size": "low",
        "user_location": {"type": "approximate", "approximate": {"country": "TW", "city": "Tainan"}},
    },
    "verbosity": "high",
    "safety_identifier": "hash-1",
    "prompt_cache_key": "cache-7",
    "prompt_cache_retention": "24h",
    "functions": [
        {"name": "lookup", "description": "Look up", "parameters": {"type": "object", "properties": {}}}
    ],
    "function_call": {"name": "lookup"},
    "stream": True,
    # Gateway routing fields: never sent upstream.
    "models": ["claude-sonnet", "gemini-pro"],
    "provider": {
        "order": ["openai", "azure"],
        "only": ["openai", "azure", "groq"],
        "ignore": ["groq"],
        "allow_fallbacks": False,
        "sort": "latency",
        "require_parameters": True,
        "max_price": {"prompt": 2.5, "completion": 10},
    },
    # Provider-specific extras, written at the top level or in a literal extra_body.
    "top_k": 40,
    "chat_template_kwargs": {"enable_thinking": False, "depth": 3},
    "extra_body": {"min_p": 0.05, "guided_choice": ["yes", "no"]},
}

ROUTING_AND_LITERAL_KEYS = ("models", "provider", "extra_body")


def _expected_upstream(request: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
    expected = {k: v for k, v in request.items() if k not in ROUTING_AND_LITERAL_KEYS}
    expected.update(request.get("extra_body", {}))
    expected["model"] = model
    expected["stream"] = stream
    if isinstance(expected.get("stop"), str):
        expected["stop"] = [expected["stop"]]
    if not stream:
        expected.pop("stream_options", None)
    return expected


def _ints_in(value: Any) -> list[int]:
    if isinstance(value, dict):
        return [i for v in value.values() for i in _ints_in(v)]
    if isinstance(value, list):
        return [i for v in value for i in _ints_in(v)]
    return [value] if type(value) is int else []


# --- requests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
def test_rich_request_round_trips_every_field(stream: bool) -> None:
    original = copy.deepcopy(RICH_REQUEST)
    params = decode_chat_request(original)
    upstream = encode_chat_request(params, "gpt-4o-2024-08-06", stream=stream)

    assert upstream == _expected_upstream(RICH_REQUEST, "gpt-4o-2024-08-06", stream)
    assert original == RICH_REQUEST, "decoding must not mutate the client's body"
    assert "models" not in upstream and "provider" not in upstream and "extra_body" not in upstream
    # A single text string stays a string; parts stay an array, even with one text part.
    assert upstream["messages"][0]["content"] == "You are terse."
    assert upstream["messages"][1]["content"] == [{"type": "text", "text": "Answer in JSON."}]
    assert upstream["messages"][10]["content"] == ""
    # JSON Schema integers stay integers (Struct stores doubles).
    schema = upstream["response_format"]["json_schema"]["schema"]
    assert sorted(_ints_in(schema)) == sorted(_ints_in(PERSON_SCHEMA))
    assert all(type(i) is int for i in _ints_in(schema))
    assert type(upstream["tools"][0]["function"]["parameters"]["properties"]["days"]["minimum"]) is int
    assert type(upstream["seed"]) is int and upstream["seed"] == 2**40 + 1
    assert upstream["chat_template_kwargs"] == {"enable_thinking": False, "depth": 3}
    assert type(upstream["chat_template_kwargs"]["depth"]) is int


def test_request_decodes_into_typed_fields() -> None:
    params = decode_chat_request(copy.deepcopy(RICH_REQUEST))

    assert params.HasField("temperature") and params.temperature == 0
    assert list(params.stop) == ["END"]
    assert dict(params.logit_bias) == {"50256": -100, "1234": 7}
    assert dict(params.metadata) == {"team": "search", "ticket": "T-1"}
    assert (
        params.messages[0].role == chat_pb2.CHAT_ROLE_SYSTEM and params.messages[0].text == "You are terse."
    )
    user = params.messages[2]
    assert [p.WhichOneof("part") for p in user.parts.parts] == [
        "text",
        "image_url",
        "image_url",
        "input_audio",
        "file",
        "file",
    ]
    assert user.parts.parts[1].image_url.detail == "high"
    assert not user.parts.parts[2].image_url.HasField("detail")
    assistant = params.messages[3]
    assert assistant.WhichOneof("content") is None
    assert assistant.tool_calls[0].function.name == "get_weather"
    assert assistant.tool_calls[1].type == "custom" and assistant.tool_calls[1].custom_input == "SELECT 1"
    assert params.tools[0].function.strict is True
    assert params.tools[2].type == "custom" and params.tools[2].custom["name"] == "run_sql"
    assert params.tool_choice.named.type == "function" and params.tool_choice.named.name == "get_weather"
    assert params.response_format.json_schema.name == "person"
    assert params.stream_options.include_usage is True and params.stream is True
    assert params.function_call.struct_value["name"] == "lookup"
    assert list(params.routing.models) == ["claude-sonnet", "gemini-pro"]
    provider = params.routing.provider
    assert list(provider.order) == ["openai", "azure"] and provider.allow_fallbacks is False
    assert provider.sort == "latency" and provider.max_price.completion == 10
    extra = params.extra_body
    assert set(extra.keys()) == {"top_k", "chat_template_kwargs", "min_p", "guided_choice"}


def test_minimal_request_sends_only_what_was_set() -> None:
    params = decode_chat_request({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert encode_chat_request(params, "up", stream=False) == {
        "model": "up",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": False,
    }
    assert not params.HasField("routing") and not params.HasField("extra_body")


def test_zero_and_false_are_kept_as_set_values() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "temperature": 0,
        "presence_penalty": 0.0,
        "seed": 0,
        "logprobs": False,
        "n": 1,
    }
    upstream = encode_chat_request(decode_chat_request(body), "m", stream=False)
    assert upstream["temperature"] == 0 and upstream["presence_penalty"] == 0 and upstream["seed"] == 0
    assert upstream["logprobs"] is False and upstream["n"] == 1


def test_nulls_are_unset() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x", "name": None}],
        "temperature": None,
        "stop": None,
        "tools": None,
        "tool_choice": None,
        "response_format": None,
        "stream_options": None,
        "logit_bias": None,
        "metadata": None,
    }
    upstream = encode_chat_request(decode_chat_request(body), "m", stream=True)
    assert upstream == {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}


def test_stream_options_only_when_streaming() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "stream_options": {"include_usage": True},
    }
    params = decode_chat_request(body)
    assert "stream_options" not in encode_chat_request(params, "m", stream=False)
    assert encode_chat_request(params, "m", stream=True)["stream_options"] == {"include_usage": True}
    params.extra_body.update({"stream_options": {"include_usage": True}})
    assert "stream_options" not in encode_chat_request(params, "m", stream=False)


def test_extra_body_cannot_override_model_messages_or_stream() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "extra_body": {"model": "other", "messages": [], "stream": True, "temperature": 0.3, "top_k": 2},
    }
    upstream = encode_chat_request(decode_chat_request(body), "upstream-model", stream=False)
    assert upstream["model"] == "upstream-model"
    assert upstream["messages"] == [{"role": "user", "content": "x"}]
    assert upstream["stream"] is False
    assert upstream["temperature"] == 0.3 and upstream["top_k"] == 2


def test_routing_inside_literal_extra_body_is_routing_not_upstream() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "extra_body": {"models": ["b"], "provider": {"only": ["groq"]}, "top_k": 1},
    }
    params = decode_chat_request(body)
    assert list(params.routing.models) == ["b"] and list(params.routing.provider.only) == ["groq"]
    upstream = encode_chat_request(params, "m", stream=False)
    assert "models" not in upstream and "provider" not in upstream and upstream["top_k"] == 1


@pytest.mark.parametrize(
    ("tool_choice", "kind"),
    [
        ("required", "mode"),
        ({"type": "custom", "custom": {"name": "run_sql"}}, "named"),
        (
            {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [{"type": "function"}]}},
            "other",
        ),
    ],
)
def test_tool_choice_forms_round_trip(tool_choice: Any, kind: str) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": tool_choice}
    params = decode_chat_request(body)
    assert params.tool_choice.WhichOneof("choice") == kind
    assert encode_chat_request(params, "m", stream=False)["tool_choice"] == tool_choice


def test_response_format_text_and_unmodelled_shapes() -> None:
    base = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    for response_format in ({"type": "text"}, {"type": "json_object"}):
        params = decode_chat_request({**base, "response_format": response_format})
        assert encode_chat_request(params, "m", stream=False)["response_format"] == response_format
    # A shape the proto does not model reaches the upstream untouched, through extra_body.
    vllm = {"type": "structural_tag", "structures": [{"begin": "<a>", "end": "</a>"}], "triggers": ["<a>"]}
    custom_voice = {"voice": {"id": "voice_123"}, "format": "wav"}
    params = decode_chat_request({**base, "response_format": vllm, "audio": custom_voice})
    assert not params.HasField("response_format") and not params.HasField("audio")
    upstream = encode_chat_request(params, "m", stream=False)
    assert upstream["response_format"] == vllm and upstream["audio"] == custom_voice


def test_reasoning_on_assistant_turns() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": "y", "reasoning_content": "because"},
        ],
    }
    params = decode_chat_request(body)
    assert params.messages[1].reasoning == "because"
    assert encode_chat_request(params, "m", stream=False)["messages"][1]["reasoning"] == "because"


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (_body(messages=[{"role": "robot", "content": "x"}]), "messages[0].role"),
        (_body(messages=[{"role": 3, "content": "x"}]), "messages[0].role"),
        (_body(messages=[{"role": "user", "content": "x"}, "hello"]), "messages[1]"),
        (_body(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (_body(messages=[{"role": "user", "content": "x", "name": 1}]), "messages[0].name"),
        (
            _body(messages=[{"role": "user", "content": [{"type": "video", "video": {}}]}]),
            "messages[0].content[0].type",
        ),
        (
            _body(
                messages=[{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url"}]}]
            ),
            "messages[0].content[1].image_url",
        ),
        (
            _body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 7}}]}]),
            "messages[0].content[0].image_url.url",
        ),
        (
            _body(
                messages=[
                    {"role": "user", "content": "x"},
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "type": "function", "function": {"name": 1}}],
                    },
                ]
            ),
            "messages[1].tool_calls[0].function.name",
        ),
        (_body(messages=[{"role": "tool", "content": "x", "tool_call_id": 9}]), "messages[0].tool_call_id"),
        (_body(temperature="hot"), "temperature"),
        (_body(temperature=True), "temperature"),
        (_body(n=2**40), "n"),
        (_body(max_tokens="10"), "max_tokens"),
        (_body(seed=1.5), "seed"),
        (_body(stream="yes"), "stream"),
        (_body(stop=["a", 1]), "stop[1]"),
        (_body(stop=5), "stop"),
        (_body(logit_bias={"50256": "x"}), "logit_bias.50256"),
        (_body(logit_bias=[1]), "logit_bias"),
        (_body(metadata={"team": 1}), "metadata.team"),
        (_body(modalities="text"), "modalities"),
        (
            _body(
                tools=[
                    {"type": "function", "function": {"name": "a"}},
                    {"type": "function", "function": {"name": 2}},
                ]
            ),
            "tools[1].function.name",
        ),
        (
            _body(tools=[{"type": "function", "function": {"name": "a", "parameters": []}}]),
            "tools[0].function.parameters",
        ),
        (_body(tools=[{"type": "browser"}]), "tools[0].type"),
        (_body(tools={"type": "function"}), "tools"),
        (_body(tool_choice=5), "tool_choice"),
        (
            _body(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
            "response_format.json_schema.name",
        ),
        (_body(response_format="json"), "response_format"),
        (_body(stream_options={"include_usage": "yes"}), "stream_options.include_usage"),
        (_body(function_call=1), "function_call"),
        (_body(provider={"sort": "cheapest"}), "provider.sort"),
        (_body(models="gpt"), "models"),
        (_body(extra_body=[1]), "extra_body"),
    ],
)
def test_type_errors_name_the_parameter(body: dict[str, Any], param: str) -> None:
    with pytest.raises(CodecError) as raised:
        decode_checked(body)
    assert raised.value.param == param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": None, "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": [{"content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
        (
            {"model": "m", "messages": [{"role": "tool", "tool_call_id": "c", "content": None}]},
            "messages[0].content",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages[0].content[0].text",
        ),
    ],
)
def test_missing_required_parameters(body: dict[str, Any], param: str) -> None:
    with pytest.raises(CodecError) as raised:
        decode_checked(body)
    assert raised.value.param == param
    assert raised.value.code == "missing_required_parameter"


def test_empty_messages_and_non_object_bodies_are_rejected() -> None:
    with pytest.raises(CodecError) as raised:
        decode_checked({"model": "m", "messages": []})
    assert raised.value.param == "messages"
    with pytest.raises(CodecError):
        decode_checked({"model": "m", "messages": {"role": "user"}})
    with pytest.raises(CodecError):
        decode_checked([{"model": "m"}])
    with pytest.raises(CodecError) as raised:
        decode_checked({"model": "", "messages": [{"role": "user", "content": "x"}]})
    assert raised.value.param == "model"


def test_assistant_turn_without_content_is_sent_as_null() -> None:
    body = _body(
        messages=[
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
        ]
    )
    assistant = encode_chat_request(decode_chat_request(body), "m", stream=False)["messages"][1]
    assert assistant == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }


# --- completions ------------------------------------------------------------------------------

# Written the way OpenAI writes it, key order included: tool_calls come before refusal. This is the
# shape from before OpenAI added `"annotations": []` to every message; the codec writes
# annotations only when there are some (a repeated field cannot tell [] from absent).
OPENAI_COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4.1-2025-04-14",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello! How can I assist you today?",
                "refusal": None,
            },
            "logprobs": {
                "content": [
                    {
                        "token": "Hello",
                        "logprob": -0.31725305,
                        "bytes": [72, 101, 108, 108, 111],
                        "top_logprobs": [
                            {"token": "Hello", "logprob": -0.31725305, "bytes": [72, 101, 108, 108, 111]},
                            {"token": "Hi", "logprob": -1.3190403, "bytes": [72, 105]},
                        ],
                    },
                    {"token": "!", "logprob": -0.02380986, "bytes": [33], "top_logprobs": []},
                    {"token": "<|x|>", "logprob": -9.5e-07, "bytes": None, "top_logprobs": []},
                ],
                "refusal": None,
            },
            "finish_reason": "stop",
        },
        {
            "index": 1,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location":"Paris, France"}'},
                    },
                    {
                        "id": "call_x",
                        "type": "custom",
                        "custom": {"name": "run_sql", "input": "SELECT 1"},
                    },
                ],
                "refusal": None,
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        },
    ],
    "usage": {
        "prompt_tokens": 19,
        "completion_tokens": 10,
        "total_tokens": 29,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_b376dfbbd5",
}


def test_openai_completion_round_trips_byte_for_byte() -> None:
    encoded = encode_chat_completion(decode_chat_completion(copy.deepcopy(OPENAI_COMPLETION)))
    assert encoded == orjson.dumps(OPENAI_COMPLETION)


def test_completion_without_fingerprint_or_usage_round_trips_byte_for_byte() -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "", "refusal": "I can't."},
                "logprobs": None,
                "finish_reason": "length",
            }
        ],
    }
    assert encode_chat_completion(decode_chat_completion(body)) == orjson.dumps(body)
    # An upstream's null is unset: omitted, since the spec types the field as a string.
    nulled = {**body, "system_fingerprint": None}
    assert encode_chat_completion(decode_chat_completion(nulled)) == orjson.dumps(body)
    assert_matches_schema(orjson.loads(orjson.dumps(body)), "CreateChatCompletionResponse")


def test_encoded_completion_matches_openai_schema() -> None:
    completion = decode_chat_completion(copy.deepcopy(OPENAI_COMPLETION))
    completion.provider = "openai"
    completion.usage.cost = 0.00123
    completion.usage.prompt_tokens_details.cache_creation_tokens = 5
    body = orjson.loads(encode_chat_completion(completion))
    assert_matches_schema(body, "CreateChatCompletionResponse")
    assert list(body)[-1] == "provider" and body["provider"] == "openai"
    assert list(body["usage"])[-1] == "cost" and body["usage"]["cost"] == 0.00123
    assert body["usage"]["prompt_tokens_details"]["cache_write_tokens"] == 5


def test_completion_extras_reasoning_annotations_audio() -> None:
    annotation = {
        "type": "url_citation",
        "url_citation": {
            "end_index": 20,
            "start_index": 4,
            "title": "Example",
            "url": "https://example.com/",
        },
    }
    audio = {"id": "audio_1", "expires_at": 1741570000, "data": "UklGRg==", "transcript": "hi"}
    body = {
        "id": "x",
        "created": 5,
        "model": "deepseek-reasoner",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Answer",
                    "reasoning_content": "Thinking...",
                    "annotations": [annotation],
                    "audio": audio,
                    "function_call": {"name": "f", "arguments": "{}"},
                },
                "finish_reason": None,
            }
        ],
    }
    encoded = orjson.loads(encode_chat_completion(decode_chat_completion(body)))
    assert encoded["object"] == "chat.completion"
    message = encoded["choices"][0]["message"]
    assert list(message) == [
        "role",
        "content",
        "function_call",
        "refusal",
        "audio",
        "reasoning",
        "annotations",
    ]
    assert message["reasoning"] == "Thinking..." and message["refusal"] is None
    assert message["annotations"] == [annotation] and message["audio"] == audio
    assert type(message["audio"]["expires_at"]) is int
    assert encoded["choices"][0]["finish_reason"] is None and encoded["choices"][0]["logprobs"] is None
    assert "system_fingerprint" not in encoded and "usage" not in encoded


def test_completion_content_given_as_parts_is_joined() -> None:
    parts = [{"type": "thinking", "thinking": []}, {"type": "text", "text": "4"}, {"type": "text"}]
    completion = decode_chat_completion({"choices": [{"message": {"content": parts}}]})
    assert completion.choices[0].message.content == "4"


def test_empty_completion_proto_still_says_chat_completion() -> None:
    body = orjson.loads(encode_chat_completion(chat_pb2.ChatCompletion()))
    assert body == {
        "id": "",
        "object": "chat.completion",
        "created": 0,
        "model": "",
        "choices": [],
    }


def test_completion_decoding_tolerates_nulls_and_missing_fields() -> None:
    completion = decode_chat_completion(
        {"choices": [{"message": {"content": "ok", "tool_calls": None, "annotations": None}}], "usage": None}
    )
    assert completion.choices[0].message.role == "assistant" and completion.choices[0].message.content == "ok"
    assert not completion.HasField("usage") and completion.object == "chat.completion"
    partial = decode_chat_completion(
        {
            "choices": [{"message": {"content": "ok"}}],
            "usage": {
                "prompt_tokens": 3,
                "completion_tokens": 1,
                "total_tokens": 4,
                "prompt_tokens_details": None,
            },
        }
    )
    assert partial.usage.total_tokens == 4 and not partial.usage.HasField("prompt_tokens_details")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], None),
        ({"id": "x"}, "choices"),
        ({"choices": None}, "choices"),
        ({"choices": [{"index": 0}]}, "choices[0].message"),
        ({"choices": [{"message": "hi"}]}, "choices[0].message"),
        ({"choices": ["x"]}, "choices[0]"),
        ({"choices": [{"message": {"content": 5}}]}, "choices[0]"),
        (
            {"choices": [{"message": {}}, {"message": {"tool_calls": [{"function": 1}]}}]},
            "choices[1].message.tool_calls[0].function",
        ),
        ({"choices": [{"message": {}, "logprobs": {"content": [{"token": 1}]}}]}, "choices[0]"),
        ({"choices": [], "usage": {"prompt_tokens": "many"}}, "usage"),
        ({"choices": [], "usage": []}, "usage"),
        ({"choices": [], "created": "today"}, "<root>"),
    ],
)
def test_completion_decoding_rejects_broken_essentials(body: Any, param: str | None) -> None:
    with pytest.raises(CodecError) as raised:
        decode_chat_completion(body)
    assert raised.value.param == param


# --- stream chunks ----------------------------------------------------------------------------


def _chunk(choices: list[dict[str, Any]], usage: Any = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-BvXq1",
        "object": "chat.completion.chunk",
        "created": 1753000000,
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "system_fingerprint": "fp_34a54ae93c",
        "choices": choices,
        "usage": usage,
    }
    body.update(extra)
    return body


def _choice(delta: dict[str, Any], finish_reason: str | None = None, index: int = 0) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


STREAM_USAGE = {
    "prompt_tokens": 81,
    "completion_tokens": 24,
    "total_tokens": 105,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}

# As OpenAI streams with stream_options.include_usage: content, then a tool call, then usage.
OPENAI_STREAM: list[dict[str, Any]] = [
    _chunk([_choice({"role": "assistant", "content": "", "refusal": None})], obfuscation="kZ2"),
    _chunk([_choice({"content": "Let me"})], obfuscation="a1b2c3"),
    _chunk([_choice({"content": " check."})], obfuscation="Q"),
    _chunk(
        [
            _choice(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_9ZzPq",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ]
                }
            )
        ]
    ),
    _chunk([_choice({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]})]),
    _chunk([_choice({"tool_calls": [{"index": 0, "function": {"arguments": 'ty":"Paris"}'}}]})]),
    _chunk(
        [
            _choice(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ]
                }
            )
        ]
    ),
    _chunk([_choice({}, "tool_calls")]),
    _chunk([], usage=STREAM_USAGE, obfuscation="zz"),
]


def _without_null_delta_keys(chunk: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(chunk)
    for choice in out["choices"]:
        choice["delta"] = {k: v for k, v in choice["delta"].items() if v is not None}
    return out


def test_openai_stream_round_trips_chunk_by_chunk() -> None:
    for original in OPENAI_STREAM:
        chunk = decode_chat_chunk(copy.deepcopy(original))
        encoded = encode_chat_chunk(chunk, include_usage_field=True)
        # Explicit nulls inside a delta ("refusal": null) are absent from the proto; all else is kept.
        assert encoded == orjson.dumps(_without_null_delta_keys(original))
        assert_matches_schema(orjson.loads(encoded), "CreateChatCompletionStreamResponse")


def test_stream_tool_call_arguments_reassemble() -> None:
    chunks = [decode_chat_chunk(copy.deepcopy(c)) for c in OPENAI_STREAM]
    arguments: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls:
                arguments[call.index] = arguments.get(call.index, "") + call.function.arguments
    assert arguments == {0: '{"city":"Paris"}', 1: "{}"}
    assert chunks[-1].usage.total_tokens == 105 and not chunks[-1].choices
    assert chunks[0].obfuscation == "kZ2" and not chunks[3].HasField("obfuscation")


def test_usage_field_only_when_asked_for() -> None:
    content = decode_chat_chunk(copy.deepcopy(OPENAI_STREAM[1]))
    assert "usage" not in orjson.loads(encode_chat_chunk(content))
    assert orjson.loads(encode_chat_chunk(content, include_usage_field=True))["usage"] is None
    final = orjson.loads(encode_chat_chunk(decode_chat_chunk(copy.deepcopy(OPENAI_STREAM[-1]))))
    assert final["choices"] == [] and final["usage"] == STREAM_USAGE


def test_chunk_gateway_fields_and_reasoning() -> None:
    body = {
        "id": "gen-1",
        "object": "chat.completion.chunk",
        "created": 1753000000.0,
        "model": "deepseek-r1",
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": None, "reasoning_content": "hmm"}}
        ],
    }
    chunk = decode_chat_chunk(body)
    chunk.provider = "deepseek"
    encoded = orjson.loads(encode_chat_chunk(chunk))
    assert encoded["created"] == 1753000000
    assert encoded["choices"][0] == {
        "index": 0,
        "delta": {"role": "assistant", "reasoning": "hmm"},
        "logprobs": None,
        "finish_reason": None,
    }
    assert list(encoded)[-1] == "provider"
    assert "system_fingerprint" not in encoded and "usage" not in encoded
    assert_matches_schema(encoded, "CreateChatCompletionStreamResponse")


def test_chunk_logprobs_and_custom_tool_deltas_round_trip() -> None:
    logprobs = {
        "content": [{"token": "Hi", "logprob": -0.5, "bytes": [72, 105], "top_logprobs": []}],
        "refusal": None,
    }
    with_logprobs = _chunk(
        [{"index": 0, "delta": {"content": "Hi"}, "logprobs": logprobs, "finish_reason": None}]
    )
    assert encode_chat_chunk(decode_chat_chunk(copy.deepcopy(with_logprobs)), True) == orjson.dumps(
        with_logprobs
    )
    custom = _chunk(
        [
            _choice(
                {
                    "tool_calls": [
                        {"index": 0, "id": "c", "type": "custom", "custom": {"name": "sql", "input": "SEL"}}
                    ]
                }
            )
        ]
    )
    assert encode_chat_chunk(decode_chat_chunk(copy.deepcopy(custom)), True) == orjson.dumps(custom)


def test_chunk_without_delta_gets_an_empty_delta() -> None:
    chunk = decode_chat_chunk({"id": "x", "choices": [{"index": 0, "finish_reason": "stop"}]})
    encoded = orjson.loads(encode_chat_chunk(chunk))
    assert encoded["object"] == "chat.completion.chunk"
    assert encoded["choices"] == [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ("data", None),
        ({"id": "x"}, "choices"),
        ({"choices": {"index": 0}}, "choices"),
        ({"choices": ["x"]}, "choices[0]"),
        ({"choices": [{"delta": {"content": 1}}]}, "choices[0]"),
        ({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": "f"}]}}]}, "choices[0]"),
        ({"choices": [], "usage": {"total_tokens": "x"}}, "usage"),
    ],
)
def test_chunk_decoding_rejects_broken_shapes(body: Any, param: str | None) -> None:
    with pytest.raises(CodecError) as raised:
        decode_chat_chunk(body)
    assert raised.value.param == param


def test_public_names() -> None:
    assert set(chat.__all__) == {
        "decode_chat_request",
        "encode_chat_request",
        "decode_chat_completion",
        "encode_chat_completion",
        "decode_chat_chunk",
        "encode_chat_chunk",
        "usage_object",
    }
