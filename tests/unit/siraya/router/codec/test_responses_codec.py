"""The Responses API codec: requests, Response objects and stream events, against OpenAI's shapes."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from siraya.router.codec import responses as codec
from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import struct_to_dict, value_to_python
from siraya.router.codec.validate import check_response_params
from siraya.router.v1 import responses_pb2
from tests.openapi_schema import assert_matches_schema

PERSON_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}

# A multi-turn request using every input item and content part type the gateway models.
FULL_REQUEST: dict[str, Any] = {
    "model": "gpt-5",
    "input": [
        {"role": "developer", "content": "Answer briefly."},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is in this image, and what's the weather there?"},
                {"type": "input_image", "image_url": "https://example.com/paris.png", "detail": "high"},
                {"type": "input_file", "file_id": "file-123", "filename": "notes.pdf"},
                {"type": "input_file", "file_url": "https://example.com/a.pdf"},
            ],
        },
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Look up."}]},
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Checking."}],
            "role": "assistant",
        },
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
            "status": "completed",
        },
        {"type": "function_call_output", "call_id": "call_1", "output": '{"temp":18}'},
        {
            "type": "function_call_output",
            "call_id": "call_2",
            "output": [{"type": "input_text", "text": "ok"}],
        },
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        {"id": "msg_0"},
    ],
    "instructions": "You are terse.",
    "tools": [WEATHER_TOOL, {"type": "web_search_preview", "search_context_size": "low"}],
    "tool_choice": {"type": "function", "name": "get_weather"},
    "text": {
        "format": {"type": "json_schema", "name": "person", "schema": PERSON_SCHEMA, "strict": True},
        "verbosity": "low",
    },
    "reasoning": {"effort": "low", "summary": "auto"},
    "max_output_tokens": 512,
    "temperature": 0.0,
    "top_p": 0.5,
    "parallel_tool_calls": False,
    "store": False,
    "metadata": {"trace": "t-1"},
    "user": "user-1",
    "service_tier": "flex",
    "truncation": "auto",
    "include": ["reasoning.encrypted_content"],
    "top_logprobs": 3,
    "max_tool_calls": 4,
    "background": False,
    "safety_identifier": "sid",
    "prompt_cache_key": "pck",
    "prompt_cache_retention": "24h",
    "stream_options": {"include_obfuscation": False},
    "stream": True,
    # gateway routing fields and a provider-specific parameter
    "models": ["claude-sonnet"],
    "provider": {"order": ["openai", "azure"], "allow_fallbacks": False, "max_price": {"prompt": 2}},
    "top_k": 40,
}

# A Response as OpenAI returns it, key order included.
OPENAI_RESPONSE: dict[str, Any] = {
    "id": "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41",
    "object": "response",
    "created_at": 1741476777,
    "status": "completed",
    "background": False,
    "completed_at": 1741476779,
    "error": None,
    "incomplete_details": None,
    "instructions": "You are terse.",
    "max_output_tokens": None,
    "max_tool_calls": None,
    "model": "gpt-5-2025-08-07",
    "output": [
        {
            "id": "rs_67ccd3aa8f2c8190a1ef5a1b8e1b8c6d",
            "type": "reasoning",
            "encrypted_content": "gAAAAABoxyz",
            "summary": [{"type": "summary_text", "text": "**Checking the weather**"}],
        },
        {
            "id": "msg_67ccd3acc8d48190a77525dc6de64b4104becb25c45c1d41",
            "type": "message",
            "status": "completed",
            "content": [
                {
                    "type": "output_text",
                    "annotations": [],
                    "logprobs": [],
                    "text": "It is 18°C in Paris. Let me also check Lyon.",
                }
            ],
            "role": "assistant",
        },
        {
            "id": "fc_67ccd3af1ea88190a5fdc94fd1d8ba4904becb25c45c1d41",
            "type": "function_call",
            "status": "completed",
            "arguments": '{"city":"Lyon"}',
            "call_id": "call_a7SMHaBfZeW4g5n1nR5cBd3H",
            "name": "get_weather",
        },
    ],
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "prompt_cache_key": None,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "safety_identifier": None,
    "service_tier": "default",
    "store": True,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}, "verbosity": "medium"},
    "tool_choice": "auto",
    "tools": [],
    "top_logprobs": 0,
    "top_p": 1.0,
    "truncation": "disabled",
    "usage": {
        "input_tokens": 328,
        "input_tokens_details": {"cache_write_tokens": 64, "cached_tokens": 128},
        "output_tokens": 52,
        "output_tokens_details": {"reasoning_tokens": 24},
        "total_tokens": 380,
    },
    "user": "user-1",
    "metadata": {"trace": "t-1"},
}


def _in_progress(response: dict[str, Any]) -> dict[str, Any]:
    # OpenAI writes "usage": null and "user": null here; its schema types both as non-null.
    snapshot = {k: v for k, v in response.items() if k not in ("usage", "user")}
    return {**snapshot, "status": "in_progress", "completed_at": None, "output": []}


MSG_ID = "msg_67ccd3acc8d48190a77525dc6de64b4104becb25c45c1d41"
FC_ID = "fc_67ccd3af1ea88190a5fdc94fd1d8ba4904becb25c45c1d41"
RS_ID = "rs_67ccd3aa8f2c8190a1ef5a1b8e1b8c6d"
OUTPUT_TEXT = OPENAI_RESPONSE["output"][1]["content"][0]

# One stream as OpenAI sends it: `type` first, then the event's keys in alphabetical order.
OPENAI_EVENTS: list[dict[str, Any]] = [
    {"type": "response.created", "response": _in_progress(OPENAI_RESPONSE), "sequence_number": 0},
    {"type": "response.in_progress", "response": _in_progress(OPENAI_RESPONSE), "sequence_number": 1},
    {
        "type": "response.output_item.added",
        "item": {"id": RS_ID, "type": "reasoning", "summary": []},
        "output_index": 0,
        "sequence_number": 2,
    },
    {
        "type": "response.reasoning_summary_part.added",
        "item_id": RS_ID,
        "output_index": 0,
        "part": {"type": "summary_text", "text": ""},
        "sequence_number": 3,
        "summary_index": 0,
    },
    {
        "type": "response.reasoning_summary_text.delta",
        "delta": "**Checking",
        "item_id": RS_ID,
        "obfuscation": "a1B2c3",
        "output_index": 0,
        "sequence_number": 4,
        "summary_index": 0,
    },
    {
        "type": "response.reasoning_summary_text.done",
        "item_id": RS_ID,
        "output_index": 0,
        "sequence_number": 5,
        "summary_index": 0,
        "text": "**Checking the weather**",
    },
    {
        "type": "response.reasoning_summary_part.done",
        "item_id": RS_ID,
        "output_index": 0,
        "part": {"type": "summary_text", "text": "**Checking the weather**"},
        "sequence_number": 6,
        "summary_index": 0,
    },
    {
        "type": "response.output_item.done",
        "item": OPENAI_RESPONSE["output"][0],
        "output_index": 0,
        "sequence_number": 7,
    },
    {
        "type": "response.output_item.added",
        "item": {
            "id": MSG_ID,
            "type": "message",
            "status": "in_progress",
            "content": [],
            "role": "assistant",
        },
        "output_index": 1,
        "sequence_number": 8,
    },
    {
        "type": "response.content_part.added",
        "content_index": 0,
        "item_id": MSG_ID,
        "output_index": 1,
        "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
        "sequence_number": 9,
    },
    {
        "type": "response.output_text.delta",
        "content_index": 0,
        "delta": "It is",
        "item_id": MSG_ID,
        "logprobs": [],
        "obfuscation": "xLfbyNUp6I",
        "output_index": 1,
        "sequence_number": 10,
    },
    {
        "type": "response.output_text.done",
        "content_index": 0,
        "item_id": MSG_ID,
        "logprobs": [],
        "output_index": 1,
        "sequence_number": 11,
        "text": OUTPUT_TEXT["text"],
    },
    {
        "type": "response.content_part.done",
        "content_index": 0,
        "item_id": MSG_ID,
        "output_index": 1,
        "part": OUTPUT_TEXT,
        "sequence_number": 12,
    },
    {
        "type": "response.output_item.done",
        "item": OPENAI_RESPONSE["output"][1],
        "output_index": 1,
        "sequence_number": 13,
    },
    {
        "type": "response.output_item.added",
        "item": {
            "id": FC_ID,
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": "call_a7SMHaBfZeW4g5n1nR5cBd3H",
            "name": "get_weather",
        },
        "output_index": 2,
        "sequence_number": 14,
    },
    {
        "type": "response.function_call_arguments.delta",
        "delta": '{"city":',
        "item_id": FC_ID,
        "obfuscation": "Qz",
        "output_index": 2,
        "sequence_number": 15,
    },
    {
        "type": "response.function_call_arguments.done",
        "arguments": '{"city":"Lyon"}',
        "item_id": FC_ID,
        "name": "get_weather",
        "output_index": 2,
        "sequence_number": 16,
    },
    {
        "type": "response.output_item.done",
        "item": OPENAI_RESPONSE["output"][2],
        "output_index": 2,
        "sequence_number": 17,
    },
    {"type": "response.completed", "response": OPENAI_RESPONSE, "sequence_number": 18},
]

# Events outside the happy path above, still in OpenAI's shapes.
MORE_EVENTS: list[dict[str, Any]] = [
    {
        "type": "response.refusal.delta",
        "content_index": 0,
        "delta": "I can't",
        "item_id": MSG_ID,
        "output_index": 0,
        "sequence_number": 3,
    },
    {
        "type": "response.refusal.done",
        "content_index": 0,
        "item_id": MSG_ID,
        "output_index": 0,
        "refusal": "I can't help with that.",
        "sequence_number": 4,
    },
    {
        "type": "response.reasoning_text.delta",
        "content_index": 0,
        "delta": "First,",
        "item_id": RS_ID,
        "output_index": 0,
        "sequence_number": 5,
    },
    {
        "type": "response.reasoning_text.done",
        "content_index": 0,
        "item_id": RS_ID,
        "output_index": 0,
        "sequence_number": 6,
        "text": "First, think.",
    },
    {
        "type": "response.incomplete",
        "response": {
            **OPENAI_RESPONSE,
            "status": "incomplete",
            "completed_at": None,
            "incomplete_details": {"reason": "max_output_tokens"},
            "max_output_tokens": 16,
        },
        "sequence_number": 7,
    },
    {
        "type": "response.failed",
        "response": {
            **_in_progress(OPENAI_RESPONSE),
            "status": "failed",
            "error": {"code": "server_error", "message": "The model failed to generate a response."},
        },
        "sequence_number": 8,
    },
    {
        "type": "error",
        "code": "rate_limit_exceeded",
        "message": "Slow down.",
        "param": None,
        "sequence_number": 9,
    },
]


def _roundtrip_response(body: dict[str, Any]) -> bytes:
    return codec.encode_response(codec.decode_response(body))


# --- requests ---------------------------------------------------------------------------------


def test_decode_full_request() -> None:
    params = codec.decode_response_request(FULL_REQUEST)
    assert params.model == "gpt-5"
    items = params.input_items.items
    assert [item.type for item in items] == [
        "message",
        "message",
        "reasoning",
        "message",
        "function_call",
        "function_call_output",
        "function_call_output",
        "web_search_call",
        "item_reference",
    ]
    easy, user = items[0], items[1]
    assert easy.role == "developer" and easy.content_text == "Answer briefly." and not easy.HasField("raw")
    assert [part.type for part in user.content] == ["input_text", "input_image", "input_file", "input_file"]
    image, file, remote = user.content[1], user.content[2], user.content[3]
    assert image.image_url == "https://example.com/paris.png" and image.detail == "high"
    assert file.file_id == "file-123" and file.filename == "notes.pdf" and not file.HasField("file_data")
    assert remote.file_url == "https://example.com/a.pdf"
    assert items[2].summary[0].text == "Look up." and items[2].id == "rs_1"
    assistant = items[3]
    assert assistant.role == "assistant" and assistant.status == "completed" and assistant.id == "msg_1"
    assert assistant.content[0].text == "Checking." and assistant.content[0].HasField("logprobs")
    call = items[4]
    assert (call.call_id, call.name, call.arguments, call.id) == (
        "call_1",
        "get_weather",
        '{"city":"Paris"}',
        "fc_1",
    )
    assert items[5].output == '{"temp":18}' and not items[5].HasField("raw")
    # Parts as output are kept whole; so are item types the gateway does not model.
    assert not items[6].HasField("output") and items[6].call_id == "call_2"
    assert struct_to_dict(items[6].raw) == FULL_REQUEST["input"][6]
    assert struct_to_dict(items[7].raw) == FULL_REQUEST["input"][7]
    assert struct_to_dict(items[8].raw) == {"id": "msg_0"}

    function, hosted = params.tools
    assert function.name == "get_weather" and function.strict is True
    assert function.parameters_json == orjson.dumps(WEATHER_TOOL["parameters"])
    assert hosted.type == "web_search_preview"
    assert orjson.loads(hosted.raw_json)["search_context_size"] == "low"
    assert params.tool_choice.function_name == "get_weather"
    assert params.text.format.type == "json_schema" and params.text.format.name == "person"
    assert params.text.format.schema_json == orjson.dumps(PERSON_SCHEMA) and params.text.verbosity == "low"
    assert (params.reasoning.effort, params.reasoning.summary) == ("low", "auto")
    assert params.max_output_tokens == 512 and params.HasField("temperature") and params.temperature == 0.0
    assert params.parallel_tool_calls is False and params.store is False and params.background is False
    assert dict(params.metadata) == {"trace": "t-1"} and list(params.include) == [
        "reasoning.encrypted_content"
    ]
    assert (params.top_logprobs, params.max_tool_calls, params.prompt_cache_retention) == (3, 4, "24h")
    assert struct_to_dict(params.stream_options) == {"include_obfuscation": False} and params.stream is True
    assert list(params.routing.models) == ["claude-sonnet"]
    assert list(params.routing.provider.order) == ["openai", "azure"]
    assert params.routing.provider.max_price.prompt == 2
    assert struct_to_dict(params.extra_body) == {"top_k": 40}


def test_encode_request_is_the_client_body_minus_routing() -> None:
    params = codec.decode_response_request(FULL_REQUEST)
    sent = codec.encode_response_request(params, "gpt-5-2025-08-07", stream=True)
    expected = {k: v for k, v in FULL_REQUEST.items() if k not in ("models", "provider")}
    expected["model"] = "gpt-5-2025-08-07"
    # EasyInputMessage gains its (optional) type; every other item goes back as the client wrote it.
    expected["input"] = copy.deepcopy(expected["input"])
    expected["input"][0]["type"] = "message"
    assert sent == expected
    assert list(sent)[:3] == ["model", "input", "instructions"]


def test_encode_request_not_streaming_drops_stream_options() -> None:
    params = codec.decode_response_request(FULL_REQUEST)
    sent = codec.encode_response_request(params, "up", stream=False)
    assert sent["stream"] is False and "stream_options" not in sent


def test_string_input_and_only_set_fields() -> None:
    params = codec.decode_response_request({"model": "m", "input": "hello"})
    assert params.input_text == "hello" and not params.HasField("temperature")
    assert codec.encode_response_request(params, "up", stream=False) == {
        "model": "up",
        "input": "hello",
        "stream": False,
    }


def test_extra_body_is_merged_but_never_overrides_reserved_fields() -> None:
    body = {
        "model": "m",
        "input": "hi",
        "temperature": 0.2,
        "seed": 7,
        "extra_body": {"model": "evil", "input": "evil", "stream": True, "temperature": 0.9, "top_k": 3},
    }
    params = codec.decode_response_request(body)
    assert struct_to_dict(params.extra_body) == {
        "seed": 7,
        "model": "evil",
        "input": "evil",
        "stream": True,
        "temperature": 0.9,
        "top_k": 3,
    }
    sent = codec.encode_response_request(params, "up", stream=False)
    assert sent == {"model": "up", "input": "hi", "temperature": 0.9, "stream": False, "seed": 7, "top_k": 3}


def test_shapes_the_proto_cannot_hold_travel_in_extra_body() -> None:
    text = {"format": {"type": "grammar", "grammar": "root ::= 'a'"}}
    reasoning = {"effort": "high", "generate_summary": "concise"}
    params = codec.decode_response_request({"model": "m", "input": "x", "text": text, "reasoning": reasoning})
    assert not params.HasField("text")
    assert params.reasoning.effort == "high"
    assert struct_to_dict(params.extra_body) == {"text": text, "reasoning": reasoning}
    sent = codec.encode_response_request(params, "up", stream=True)
    assert sent["text"] == text and sent["reasoning"] == reasoning


@pytest.mark.parametrize(
    "extra",
    [{"previous_response_id": "resp_1"}, {"prompt": {"id": "pmpt_1"}}, {"conversation": "conv_1"}],
)
def test_input_may_be_omitted_with_server_side_state(extra: dict[str, Any]) -> None:
    params = codec.decode_response_request({"model": "m", **extra})
    assert not params.HasField("input")
    sent = codec.encode_response_request(params, "up", stream=False)
    assert "input" not in sent and sent[next(iter(extra))] == next(iter(extra.values()))


def test_conversation_object_and_other_tool_choice() -> None:
    body = {
        "model": "m",
        "conversation": {"id": "conv_1"},
        "tool_choice": {
            "type": "allowed_tools",
            "mode": "auto",
            "tools": [{"type": "function", "name": "f"}],
        },
    }
    params = codec.decode_response_request(body)
    assert value_to_python(params.conversation) == {"id": "conv_1"}
    assert struct_to_dict(params.tool_choice.other) == body["tool_choice"]
    assert codec.encode_response_request(params, "up", stream=False)["tool_choice"] == body["tool_choice"]


def _with_input(*items: Any) -> dict[str, Any]:
    return {"model": "m", "input": list(items)}


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"input": "x"}, "model", "missing_required_parameter"),
        ({"model": 5, "input": "x"}, "model", "invalid_type"),
        ({"model": "m"}, "input", "missing_required_parameter"),
        ({"model": "m", "input": 3}, "input", "invalid_type"),
        (_with_input("hi"), "input[0]", "invalid_type"),
        (_with_input({"content": "hi"}), "input[0].type", "missing_required_parameter"),
        (_with_input({"role": "robot", "content": "hi"}), "input[0].role", "invalid_value"),
        (_with_input({"role": "user"}), "input[0].content", "missing_required_parameter"),
        (_with_input({"role": "user", "content": 7}), "input[0].content", "invalid_type"),
        (
            _with_input(
                {"role": "user", "content": "a"},
                {"role": "user", "content": "b"},
                {"role": "user", "content": [{"type": "input_text", "text": 1}]},
            ),
            "input[2].content[0].text",
            "invalid_type",
        ),
        (_with_input({"role": "user", "content": [{"text": "x"}]}), "input[0].content[0].type", None),
        (
            _with_input({"role": "user", "content": [{"type": "input_image", "image_url": 5}]}),
            "input[0].content[0].image_url",
            "invalid_type",
        ),
        (
            _with_input({"type": "function_call", "name": "f", "arguments": "{}"}),
            "input[0].call_id",
            "missing_required_parameter",
        ),
        (_with_input({"type": "function_call_output", "call_id": "c", "output": 3}), "input[0].output", None),
        (
            _with_input({"type": "reasoning", "summary": [{"type": "summary_text"}]}),
            "input[0].summary[0].text",
            "missing_required_parameter",
        ),
        ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name", None),
        ({"model": "m", "input": "x", "tools": [{"name": "f"}]}, "tools[0].type", None),
        ({"model": "m", "input": "x", "tools": {"type": "function"}}, "tools", "invalid_type"),
        (
            {"model": "m", "input": "x", "tools": [{"type": "function", "name": "f", "parameters": "{}"}]},
            "tools[0].parameters",
            "invalid_type",
        ),
        ({"model": "m", "input": "x", "tool_choice": "always"}, "tool_choice", "invalid_value"),
        ({"model": "m", "input": "x", "tool_choice": 1}, "tool_choice", "invalid_type"),
        (
            {
                "model": "m",
                "input": "x",
                "text": {"format": {"type": "json_schema", "name": "p", "schema": []}},
            },
            "text.format.schema",
            "invalid_type",
        ),
        (
            {"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "schema": {}}}},
            "text.format.name",
            "missing_required_parameter",
        ),
        ({"model": "m", "input": "x", "reasoning": {"effort": 1}}, "reasoning.effort", "invalid_type"),
        ({"model": "m", "input": "x", "temperature": "hot"}, "temperature", "invalid_type"),
        ({"model": "m", "input": "x", "max_output_tokens": 2**40}, "max_output_tokens", "invalid_value"),
        ({"model": "m", "input": "x", "stream": "yes"}, "stream", "invalid_type"),
        ({"model": "m", "input": "x", "metadata": {"k": 1}}, "metadata.k", "invalid_type"),
        ({"model": "m", "input": "x", "include": ["a", 2]}, "include[1]", "invalid_type"),
        ({"model": "m", "input": "x", "conversation": 3}, "conversation", "invalid_type"),
        ({"model": "m", "input": "x", "provider": {"sort": "cheapest"}}, "provider.sort", "invalid_value"),
        ({"model": "m", "input": "x", "models": "gpt"}, "models", "invalid_type"),
        ({"model": "m", "input": "x", "extra_body": []}, "extra_body", "invalid_type"),
    ],
)
def test_request_errors_name_the_field(body: dict[str, Any], param: str, code: str | None) -> None:
    with pytest.raises(CodecError) as caught:
        # What a REST body meets: the decoder's JSON checks, then the rules every servicer applies.
        check_response_params(codec.decode_response_request(body))
    assert caught.value.param == param
    if code is not None:
        assert caught.value.code == code


def test_request_body_must_be_an_object() -> None:
    with pytest.raises(CodecError):
        codec.decode_response_request([])  # type: ignore[arg-type]


# --- Response objects -------------------------------------------------------------------------


def test_openai_response_round_trips_byte_for_byte() -> None:
    assert _roundtrip_response(OPENAI_RESPONSE) == orjson.dumps(OPENAI_RESPONSE)


def test_encoded_response_matches_the_openapi_schema() -> None:
    assert_matches_schema(orjson.loads(_roundtrip_response(OPENAI_RESPONSE)), "Response")


def test_decode_response_fields() -> None:
    response = codec.decode_response(OPENAI_RESPONSE)
    assert response.status == "completed" and response.completed_at == 1741476779
    assert response.background is False and response.top_logprobs == 0 and response.store is True
    reasoning, message, call = response.output
    assert reasoning.encrypted_content == "gAAAAABoxyz" and reasoning.summary[0].type == "summary_text"
    assert message.content[0].text.startswith("It is 18°C") and message.status == "completed"
    assert call.call_id == "call_a7SMHaBfZeW4g5n1nR5cBd3H" and call.arguments == '{"city":"Lyon"}'
    usage = response.usage
    assert (usage.input_tokens, usage.cached_tokens, usage.output_tokens) == (328, 128, 52)
    assert (usage.reasoning_tokens, usage.total_tokens) == (24, 380)
    assert not response.HasField("error") and not response.HasField("max_output_tokens")


def test_response_with_tools_schema_format_and_tool_choice() -> None:
    # Struct-held objects (parameters, schema, metadata) come back equal, though protobuf does not
    # keep their key order; every top-level and item key keeps OpenAI's order.
    body = {
        **OPENAI_RESPONSE,
        "text": {
            "format": {
                "type": "json_schema",
                "description": "A person",
                "name": "person",
                "schema": PERSON_SCHEMA,
                "strict": True,
            },
            "verbosity": "low",
        },
        "tool_choice": {"type": "function", "name": "get_weather"},
        # OpenAI echoes a function tool as type, description, name, parameters, strict.
        "tools": [
            {
                "type": "function",
                "description": "Weather for a city",
                "name": "get_weather",
                "parameters": WEATHER_TOOL["parameters"],
                "strict": True,
            }
        ],
        "metadata": {"a": "1", "b": "2", "c": "3"},
    }
    encoded = orjson.loads(_roundtrip_response(body))
    assert encoded == body
    assert list(encoded) == list(body) and list(encoded["tools"][0]) == list(body["tools"][0])
    assert_matches_schema(encoded, "Response")


def test_item_keys_the_proto_does_not_model_survive() -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "status": "completed",
        "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Hi"}],
        "phase": "final_answer",
        "role": "assistant",
    }
    search = {"id": "ws_1", "type": "web_search_call", "status": "completed", "action": {"type": "search"}}
    body = {**OPENAI_RESPONSE, "output": [message, search]}
    response = codec.decode_response(body)
    assert response.output[0].content[0].text == "Hi"  # typed fields are still there
    # Kept in a Struct: every key and value survives, their order does not (protobuf maps are unordered).
    encoded = orjson.loads(codec.encode_response(response))
    assert encoded == body and list(encoded) == list(body)


def test_unset_response_encodes_with_openai_defaults() -> None:
    response = responses_pb2.Response(id="resp_1", created_at=1, status="in_progress", model="m")
    body = orjson.loads(codec.encode_response(response))
    assert body["object"] == "response" and body["tool_choice"] == "auto" and body["tools"] == []
    assert body["reasoning"] == {"effort": None, "summary": None}
    assert body["text"] == {"format": {"type": "text"}} and body["metadata"] == {}
    assert body["error"] is None and body["temperature"] is None and body["completed_at"] is None
    assert "usage" not in body and "user" not in body and "provider" not in body
    assert_matches_schema(body, "Response")


def test_provider_and_cost_are_gateway_extensions_written_last() -> None:
    response = codec.decode_response(OPENAI_RESPONSE)
    response.provider = "openai"
    response.usage.cost = 0.0125
    body = orjson.loads(codec.encode_response(response))
    assert list(body)[-1] == "provider" and body["provider"] == "openai"
    assert list(body["usage"])[-1] == "cost" and body["usage"]["cost"] == 0.0125


def test_decode_response_tolerates_float_timestamps_and_missing_optionals() -> None:
    response = codec.decode_response({"id": "r", "created_at": 1741476777.0, "output": [], "model": "m"})
    assert response.created_at == 1741476777 and response.parallel_tool_calls is True
    assert response.object == "response" and not response.HasField("usage")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], None),
        ({"id": "r"}, "output"),
        ({"id": "r", "output": {}}, "output"),
        (
            {
                "id": "r",
                "output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text"}]}],
            },
            "output[0].content[0].text",
        ),
        ({"id": "r", "output": [], "created_at": "yesterday"}, None),
        ({"id": "r", "output": [], "usage": []}, None),
        ({"id": "r", "output": [], "tools": [{"type": "function"}]}, "tools[0].name"),
    ],
)
def test_decode_response_rejects_bad_bodies(body: Any, param: str | None) -> None:
    with pytest.raises(CodecError) as caught:
        codec.decode_response(body)
    assert caught.value.param == param


# --- stream events ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event", OPENAI_EVENTS + MORE_EVENTS, ids=lambda e: f"{e['sequence_number']}-{e['type']}"
)
def test_event_round_trips_byte_for_byte(event: dict[str, Any]) -> None:
    decoded = codec.decode_response_event(event)
    assert decoded.type == event["type"] and decoded.sequence_number == event["sequence_number"]
    assert not decoded.HasField("raw")
    assert codec.encode_response_event(decoded) == orjson.dumps(event)


@pytest.mark.parametrize(
    "event", OPENAI_EVENTS + MORE_EVENTS, ids=lambda e: f"{e['sequence_number']}-{e['type']}"
)
def test_encoded_event_matches_the_openapi_schema(event: dict[str, Any]) -> None:
    encoded = orjson.loads(codec.encode_response_event(codec.decode_response_event(event)))
    assert_matches_schema(encoded, "ResponseStreamEvent")


def test_decoded_events_are_typed() -> None:
    delta = codec.decode_response_event(OPENAI_EVENTS[10])
    assert (delta.item_id, delta.output_index, delta.content_index, delta.delta) == (MSG_ID, 1, 0, "It is")
    assert delta.obfuscation == "xLfbyNUp6I" and delta.HasField("logprobs")
    done = codec.decode_response_event(OPENAI_EVENTS[16])
    assert (done.name, done.arguments) == ("get_weather", '{"city":"Lyon"}')
    added = codec.decode_response_event(OPENAI_EVENTS[14])
    assert added.item.type == "function_call" and added.item.status == "in_progress"
    completed = codec.decode_response_event(OPENAI_EVENTS[-1])
    assert completed.response.usage.total_tokens == 380
    error = codec.decode_response_event(MORE_EVENTS[-1])
    assert (error.code, error.message, error.HasField("param")) == (
        "rate_limit_exceeded",
        "Slow down.",
        False,
    )


def test_unmodelled_event_is_kept_whole_with_a_new_sequence_number() -> None:
    raw = {
        "type": "response.web_search_call.searching",
        "item_id": "ws_1",
        "output_index": 0,
        "sequence_number": 3,
    }
    event = codec.decode_response_event(raw)
    assert event.HasField("raw") and event.sequence_number == 3
    event.sequence_number = 42
    assert orjson.loads(codec.encode_response_event(event)) == {**raw, "sequence_number": 42}


def test_nested_error_event_keeps_its_shape_and_reads_its_fields() -> None:
    raw = {
        "type": "error",
        "error": {"type": "invalid_request_error", "code": "context_length_exceeded", "message": "Too long."},
        "sequence_number": 2,
    }
    event = codec.decode_response_event(raw)
    assert (event.code, event.message) == ("context_length_exceeded", "Too long.")
    assert orjson.loads(codec.encode_response_event(event)) == raw


def test_response_events_stay_typed_so_the_gateway_can_rewrite_them() -> None:
    raw = {**OPENAI_EVENTS[-1], "unexpected": True}
    event = codec.decode_response_event(raw)
    assert not event.HasField("raw")
    event.response.model = "my-alias"
    assert orjson.loads(codec.encode_response_event(event))["response"]["model"] == "my-alias"


def test_built_events_carry_openai_required_keys() -> None:
    delta = responses_pb2.ResponseStreamEvent(
        type="response.output_text.delta",
        sequence_number=4,
        item_id="msg_1",
        output_index=0,
        content_index=0,
        delta="Hi",
    )
    assert codec.encode_response_event(delta) == (
        b'{"type":"response.output_text.delta","content_index":0,"delta":"Hi","item_id":"msg_1",'
        b'"logprobs":[],"output_index":0,"sequence_number":4}'
    )
    error = responses_pb2.ResponseStreamEvent(type="error", sequence_number=9, message="boom")
    assert codec.encode_response_event(error) == (
        b'{"type":"error","code":null,"message":"boom","param":null,"sequence_number":9}'
    )
    for event in (delta, error):
        assert_matches_schema(orjson.loads(codec.encode_response_event(event)), "ResponseStreamEvent")


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"sequence_number": 1},
        {"type": 3},
        {"type": "response.output_text.delta", "delta": 5, "sequence_number": 1},
        {"type": "response.output_item.added", "item": "x", "output_index": 0, "sequence_number": 1},
        {"type": "response.completed", "response": [], "sequence_number": 1},
    ],
)
def test_decode_event_rejects_bad_events(body: Any) -> None:
    with pytest.raises(CodecError):
        codec.decode_response_event(body)
