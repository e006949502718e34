"""The Anthropic adapter's pure translations, both ways, against recorded bodies.

Every translated request is also run through the fake upstream's validator, so a body that
Anthropic would refuse (roles not alternating, tool_result out of place, ...) fails here too.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from google.protobuf import json_format

from server.errors import (
    GatewayError,
    InvalidRequest,
    RateLimited,
    RequestTimeout,
    UpstreamError,
    UpstreamOverloaded,
)
from server.providers.anthropic.errors import error_from_event, error_from_response
from server.providers.anthropic.request import (
    ANTHROPIC_SUPPORT,
    DEFAULT_MAX_TOKENS,
    THINKING_BUDGETS,
    resolve_media,
    to_anthropic,
)
from server.providers.anthropic.response import AnthropicShapeError, finish_reason, from_anthropic
from server.providers.anthropic.stream import StreamTranslator
from server.providers.param_policy import enforce_chat_support
from siraya.router.codec.chat_request import decode_chat_request
from siraya.router.v1 import chat_pb2
from tests.fakes.anthropic_upstream import sign_thinking, validate_request
from tests.paths import UNIT_DATA

MODEL = "claude-sonnet-4-5-20250929"
KEY = "sk-ant-api03-SECRET-do-not-leak-0123456789"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
PDF = b"%PDF-1.4\n%fake pdf body\n"
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather for a city.", "parameters": WEATHER_SCHEMA},
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time"}}


def params(**body: Any) -> chat_pb2.ChatCompletionParams:
    body.setdefault("model", "claude-test")
    body.setdefault("messages", [{"role": "user", "content": "Hi"}])
    return decode_chat_request(body)


def translate(stream: bool = False, **body: Any) -> dict[str, Any]:
    request = params(**body)
    translated = to_anthropic(request, MODEL, stream, resolve_media(request))
    validate_request(orjson.loads(orjson.dumps(translated)))
    return translated


def data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


# --- requests ---------------------------------------------------------------------------------


def test_minimal_request_has_model_default_max_tokens_and_block_content() -> None:
    body = translate()
    assert body == {
        "model": MODEL,
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    }
    assert translate(stream=True)["stream"] is True


def test_system_and_developer_messages_become_top_level_system() -> None:
    single = translate(
        messages=[{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}]
    )
    assert single["system"] == "Be terse."
    body = translate(
        messages=[
            {"role": "system", "content": "Be terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Hi"},
            {"role": "system", "content": "Late rule."},
            {"role": "user", "content": "Again"},
        ]
    )
    assert body["system"] == [
        {"type": "text", "text": "Be terse."},
        {"type": "text", "text": "Answer in French."},
        {"type": "text", "text": "Late rule."},
    ]
    # With the system turn gone, the two user turns are one.
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "Again"}]}
    ]


def test_consecutive_turns_merge_and_an_assistant_opening_gets_a_user_turn() -> None:
    body = translate(
        messages=[
            {"role": "assistant", "content": "Welcome!"},
            {"role": "assistant", "content": "Ask me anything."},
            {"role": "user", "content": ""},
            {"role": "user", "content": "One"},
            {"role": "user", "content": [{"type": "text", "text": "Two"}]},
        ]
    )
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "."}]},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Welcome!"}, {"type": "text", "text": "Ask me anything."}],
        },
        {"role": "user", "content": [{"type": "text", "text": "One"}, {"type": "text", "text": "Two"}]},
    ]


def test_a_conversation_of_only_system_messages_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        translate(messages=[{"role": "system", "content": "Rules"}])
    assert caught.value.param == "messages"


def test_images_from_data_urls_and_https_urls() -> None:
    body = translate(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": data_url("image/png", PNG), "detail": "high"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            }
        ]
    )
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "Compare"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(PNG).decode()},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://example.com/cat.png", "https:// or data:"),
        (data_url("application/pdf", PDF), "application/pdf"),
        ("data:image/png;base64,@@@", "base64"),
    ],
)
def test_bad_image_urls_are_refused_naming_the_part(url: str, expected: str) -> None:
    content = [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": url}}]
    with pytest.raises(InvalidRequest) as caught:
        translate(messages=[{"role": "user", "content": content}])
    assert caught.value.param == "messages[0].content[1].image_url"
    assert expected in caught.value.message


def test_pdf_and_text_files_become_document_blocks() -> None:
    body = translate(
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "file",
                        "file": {"filename": "report.pdf", "file_data": data_url("application/pdf", PDF)},
                    },
                    {"type": "file", "file": {"file_data": base64.b64encode(PDF).decode()}},
                    {
                        "type": "file",
                        "file": {"filename": "notes.txt", "file_data": base64.b64encode(b"hello").decode()},
                    },
                    {"type": "text", "text": "Summarise"},
                ],
            }
        ]
    )
    pdf_source = {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(PDF).decode()}
    assert body["messages"][0]["content"] == [
        {"type": "document", "source": pdf_source, "title": "report.pdf"},
        {"type": "document", "source": pdf_source},
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "hello"},
            "title": "notes.txt",
        },
        {"type": "text", "text": "Summarise"},
    ]


def test_file_ids_are_refused() -> None:
    content = [{"type": "file", "file": {"file_id": "file-abc"}}]
    with pytest.raises(InvalidRequest) as caught:
        translate(messages=[{"role": "user", "content": content}])
    assert caught.value.param == "messages[0].content[0].file.file_id"


def test_tools_become_input_schemas() -> None:
    strict_tool = {"type": "function", "function": {**WEATHER_TOOL["function"], "strict": True}}
    body = translate(tools=[strict_tool, TIME_TOOL])
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city.",
            "input_schema": WEATHER_SCHEMA,
            "strict": True,
        },
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        ({"type": "function", "function": {"name": "get_time"}}, None, {"type": "tool", "name": "get_time"}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
        ("auto", True, {"type": "auto"}),
    ],
)
def test_tool_choice_mapping(tool_choice: Any, parallel: bool | None, expected: dict[str, Any]) -> None:
    extra: dict[str, Any] = {}
    if tool_choice is not None:
        extra["tool_choice"] = tool_choice
    if parallel is not None:
        extra["parallel_tool_calls"] = parallel
    assert translate(tools=[WEATHER_TOOL, TIME_TOOL], **extra)["tool_choice"] == expected


def test_allowed_tools_filters_the_tool_list() -> None:
    choice = {
        "type": "allowed_tools",
        "allowed_tools": {
            "mode": "required",
            "tools": [{"type": "function", "function": {"name": "get_time"}}],
        },
    }
    body = translate(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=choice)
    assert [tool["name"] for tool in body["tools"]] == ["get_time"]
    assert body["tool_choice"] == {"type": "any"}


TOOL_ROUND_TRIP = [
    {"role": "user", "content": "Weather in Paris and the time?"},
    {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {
                "id": "toolu_01",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            },
            {"id": "toolu_02", "type": "function", "function": {"name": "get_time", "arguments": ""}},
        ],
    },
    {"role": "tool", "tool_call_id": "toolu_01", "content": "18C and sunny"},
    {"role": "tool", "tool_call_id": "toolu_02", "content": [{"type": "text", "text": "14:00"}]},
    {"role": "user", "content": "Thanks, and tomorrow?"},
]


def test_tool_calls_become_tool_use_and_tool_messages_tool_results() -> None:
    body = translate(messages=TOOL_ROUND_TRIP, tools=[WEATHER_TOOL, TIME_TOOL])
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01",
                    "content": [{"type": "text", "text": "18C and sunny"}],
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_02",
                    "content": [{"type": "text", "text": "14:00"}],
                },
                {"type": "text", "text": "Thanks, and tomorrow?"},
            ],
        },
    ]


def test_user_text_before_tool_results_still_follows_them() -> None:
    messages = [*TOOL_ROUND_TRIP[:2], TOOL_ROUND_TRIP[4], *TOOL_ROUND_TRIP[2:4]]
    content = translate(messages=messages, tools=[WEATHER_TOOL, TIME_TOOL])["messages"][2]["content"]
    assert [block["type"] for block in content] == ["tool_result", "tool_result", "text"]


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_bad_tool_call_arguments_are_refused(arguments: str) -> None:
    messages = [
        {"role": "user", "content": "Go"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "get_time", "arguments": arguments}}
            ],
        },
    ]
    with pytest.raises(InvalidRequest) as caught:
        translate(messages=messages, tools=[TIME_TOOL])
    assert caught.value.param == "messages[1].tool_calls[0].function.arguments"


def test_json_schema_uses_structured_outputs() -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "weather", "schema": WEATHER_SCHEMA, "strict": True},
    }
    body = translate(response_format=response_format)
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": WEATHER_SCHEMA}}
    assert "tools" not in body and "system" not in body


def test_json_object_becomes_a_system_instruction() -> None:
    body = translate(
        messages=[{"role": "system", "content": "Be terse."}, {"role": "user", "content": "List 3 colours"}],
        response_format={"type": "json_object"},
    )
    assert body["system"][0] == {"type": "text", "text": "Be terse."}
    assert "JSON object" in body["system"][1]["text"]
    assert "output_config" not in body


@pytest.mark.parametrize("effort", ["low", "medium", "high"])
def test_reasoning_effort_becomes_a_thinking_budget(effort: str) -> None:
    budget = THINKING_BUDGETS[effort]
    body = translate(reasoning_effort=effort)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == budget + DEFAULT_MAX_TOKENS
    roomy = translate(reasoning_effort=effort, max_completion_tokens=budget + 500)
    assert roomy["max_tokens"] == budget + 500
    tight = translate(reasoning_effort=effort, max_tokens=300)
    assert tight["max_tokens"] == budget + 300


def test_thinking_budgets_are_documented_values() -> None:
    assert THINKING_BUDGETS == {"low": 1024, "medium": 4096, "high": 16384}


@pytest.mark.parametrize("effort", ["none", "minimal"])
def test_no_thinking_for_none_and_minimal(effort: str) -> None:
    body = translate(reasoning_effort=effort)
    assert "thinking" not in body
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS


def test_unknown_reasoning_effort_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        translate(reasoning_effort="extreme")
    assert caught.value.param == "reasoning_effort"


def test_thinking_is_left_off_while_a_tool_loop_continues() -> None:
    # The fake refuses thinking here: the last assistant turn would need its signed thinking block.
    body = translate(messages=TOOL_ROUND_TRIP[:4], tools=[WEATHER_TOOL, TIME_TOOL], reasoning_effort="high")
    assert "thinking" not in body
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS


THOUGHT = "Weather first, then the time."
CARRIED_LOOP = [
    {"role": "user", "content": "Weather in Paris and the time?"},
    {
        "role": "assistant",
        "content": None,
        "reasoning": THOUGHT,
        "tool_calls": [
            {
                "id": f"toolu_01__ts_{sign_thinking(THOUGHT)}",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            },
            {"id": "toolu_02", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
        ],
    },
    {"role": "tool", "tool_call_id": f"toolu_01__ts_{sign_thinking(THOUGHT)}", "content": "18C"},
    {"role": "tool", "tool_call_id": "toolu_02", "content": "14:00"},
]


def test_a_carried_thinking_block_keeps_thinking_on_in_a_tool_loop() -> None:
    # `translate` runs the fake's validator, which checks the signature against the text.
    body = translate(messages=CARRIED_LOOP, tools=[WEATHER_TOOL, TIME_TOOL], reasoning_effort="high")
    assert body["thinking"] == {"type": "enabled", "budget_tokens": THINKING_BUDGETS["high"]}
    assistant, results = body["messages"][1]["content"], body["messages"][2]["content"]
    assert assistant[0] == {"type": "thinking", "thinking": THOUGHT, "signature": sign_thinking(THOUGHT)}
    assert [(b["type"], b["id"]) for b in assistant[1:]] == [
        ("tool_use", "toolu_01"),
        ("tool_use", "toolu_02"),
    ]
    assert [b["tool_use_id"] for b in results] == ["toolu_01", "toolu_02"]


def test_carried_thinking_blocks_are_sent_only_while_thinking_is_on() -> None:
    body = translate(messages=CARRIED_LOOP, tools=[WEATHER_TOOL, TIME_TOOL])
    assert "thinking" not in body
    assert [b["type"] for b in body["messages"][1]["content"]] == ["tool_use", "tool_use"]
    assert body["messages"][1]["content"][0]["id"] == "toolu_01"
    literal = translate(
        messages=CARRIED_LOOP,
        tools=[WEATHER_TOOL, TIME_TOOL],
        extra_body={"thinking": {"type": "enabled", "budget_tokens": 2048}},
    )
    assert literal["messages"][1]["content"][0]["type"] == "thinking"


def test_a_tool_loop_without_its_reasoning_runs_with_thinking_off() -> None:
    # The client dropped `reasoning`: the signature alone cannot rebuild the block.
    messages = [dict(m) for m in CARRIED_LOOP]
    del messages[1]["reasoning"]
    body = translate(messages=messages, tools=[WEATHER_TOOL, TIME_TOOL], reasoning_effort="high")
    assert "thinking" not in body
    assert [b["type"] for b in body["messages"][1]["content"]] == ["tool_use", "tool_use"]


def test_sampling_stop_and_extra_body() -> None:
    body = translate(
        temperature=1.7,
        top_p=0.9,
        stop=["END", "###"],
        max_tokens=200,
        user="user-42",
        top_k=40,
        extra_body={"thinking": {"type": "disabled"}, "logit_scale": 3},
        models=["claude-fallback"],
        provider={"order": ["anthropic"]},
    )
    assert body["temperature"] == 1.0
    assert body["top_p"] == 0.9
    assert body["stop_sequences"] == ["END", "###"]
    assert body["max_tokens"] == 200
    assert body["metadata"] == {"user_id": "user-42"}
    assert body["top_k"] == 40
    assert body["thinking"] == {"type": "disabled"}
    for never in ("logit_scale", "models", "provider", "routing", "extra_body", "user", "stop"):
        assert never not in body
    assert translate(stop="\n\n")["stop_sequences"] == ["\n\n"]


def test_a_literal_thinking_in_extra_body_wins_over_reasoning_effort() -> None:
    thinking = {"type": "enabled", "budget_tokens": 2000}
    body = translate(reasoning_effort="high", max_tokens=3000, extra_body={"thinking": thinking})
    assert body["thinking"] == thinking
    assert body["max_tokens"] == 3000


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    assert translate(max_tokens=100, max_completion_tokens=300)["max_tokens"] == 300


@pytest.mark.parametrize(
    ("field", "value", "param"),
    [
        ("n", 2, "n"),
        ("logprobs", True, "logprobs"),
        ("modalities", ["text", "audio"], "modalities"),
        ("presence_penalty", 0.5, "presence_penalty"),
        ("frequency_penalty", 0.1, "frequency_penalty"),
    ],
)
def test_parameters_anthropic_cannot_honour_are_refused(field: str, value: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        enforce_chat_support(params(**{field: value}), ANTHROPIC_SUPPORT, provider="anthropic")
    assert caught.value.param == param
    assert caught.value.kind.http_status == 400


def test_audio_parts_are_refused_and_bookkeeping_is_dropped() -> None:
    audio = [{"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]
    with pytest.raises(InvalidRequest) as caught:
        enforce_chat_support(params(messages=[{"role": "user", "content": audio}]), ANTHROPIC_SUPPORT)
    assert caught.value.param == "messages[0].content[0]"
    dropped = enforce_chat_support(params(seed=7, n=1, store=True, logprobs=False), ANTHROPIC_SUPPORT)
    assert set(dropped) == {"seed", "n", "store", "logprobs"}
    assert (
        enforce_chat_support(
            params(temperature=0.2, stream_options={"include_usage": True}), ANTHROPIC_SUPPORT
        )
        == []
    )


# --- responses --------------------------------------------------------------------------------

TEXT_REPLY = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": MODEL,
    "content": [{"type": "text", "text": "Hello! "}, {"type": "text", "text": "How can I help?"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 12, "output_tokens": 6},
}


def as_dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def test_text_reply() -> None:
    completion = from_anthropic(TEXT_REPLY, created=1700000000)
    assert as_dict(completion) == {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "object": "chat.completion",
        "created": "1700000000",
        "model": MODEL,
        "choices": [
            {
                # index 0 is proto3's default, so MessageToDict leaves it out.
                "message": {"role": "assistant", "content": "Hello! How can I help?"},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": "12",
            "completion_tokens": "6",
            "total_tokens": "18",
            "prompt_tokens_details": {"cached_tokens": "0"},
        },
    }


def test_tool_use_reply() -> None:
    reply = {
        **TEXT_REPLY,
        "content": [
            {
                "type": "tool_use",
                "id": "toolu_01A",
                "name": "get_weather",
                "input": {"city": "Paris", "days": [1, 2]},
            },
            {"type": "tool_use", "id": "toolu_01B", "name": "get_time", "input": {}},
        ],
        "stop_reason": "tool_use",
    }
    choice = from_anthropic(reply).choices[0]
    assert choice.finish_reason == "tool_calls"
    assert not choice.message.HasField("content")
    assert [(c.id, c.type, c.function.name, c.function.arguments) for c in choice.message.tool_calls] == [
        ("toolu_01A", "function", "get_weather", '{"city":"Paris","days":[1,2]}'),
        ("toolu_01B", "function", "get_time", "{}"),
    ]


def test_thinking_reply_sets_reasoning() -> None:
    reply = {
        **TEXT_REPLY,
        "content": [
            {"type": "thinking", "thinking": "Let me add: 2+2=4.", "signature": "EqQBCgIYAhIM"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
            {"type": "text", "text": "4"},
        ],
    }
    message = from_anthropic(reply).choices[0].message
    assert message.reasoning == "Let me add: 2+2=4."
    assert message.content == "4"


def test_a_lone_thinking_signature_rides_in_the_first_tool_call_id() -> None:
    thinking = {"type": "thinking", "thinking": "Two lookups.", "signature": "Eq+/sig=="}
    calls = [
        {"type": "tool_use", "id": "toolu_A", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_B", "name": "get_time", "input": {}},
    ]
    message = from_anthropic({**TEXT_REPLY, "content": [thinking, *calls], "stop_reason": "tool_use"})
    ids = [call.id for call in message.choices[0].message.tool_calls]
    assert ids == ["toolu_A__ts_Eq+/sig==", "toolu_B"]
    redacted = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}
    for content in (
        [thinking, redacted],
        [thinking, thinking],
        [{**thinking, "signature": ""}],
    ):
        reply = from_anthropic({**TEXT_REPLY, "content": [*content, *calls]})
        assert all("__ts_" not in call.id for call in reply.choices[0].message.tool_calls)


def test_usage_with_prompt_cache() -> None:
    usage = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 200,
        "cache_read_input_tokens": 1000,
        "output_tokens": 50,
        "service_tier": "standard",
        "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 0},
    }
    result = from_anthropic({**TEXT_REPLY, "usage": usage}).usage
    assert (result.prompt_tokens, result.completion_tokens, result.total_tokens) == (1210, 50, 1260)
    assert result.prompt_tokens_details.cached_tokens == 1000
    assert result.prompt_tokens_details.cache_creation_tokens == 200


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("something_new", "stop"),
        (None, "stop"),
    ],
)
def test_finish_reasons(stop_reason: str | None, expected: str) -> None:
    assert finish_reason(stop_reason) == expected
    assert from_anthropic({**TEXT_REPLY, "stop_reason": stop_reason}).choices[0].finish_reason == expected


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"id": "msg_1"},
        {**TEXT_REPLY, "content": [{"type": "text"}]},
        {**TEXT_REPLY, "usage": {"input_tokens": "many"}},
        {**TEXT_REPLY, "id": 5},
    ],
)
def test_malformed_replies_are_shape_errors(body: Any) -> None:
    with pytest.raises(AnthropicShapeError):
        from_anthropic(body)


# --- streams ----------------------------------------------------------------------------------

# A stream as Anthropic sends it: thinking, text, then two tool_use blocks, with pings between.
RECORDED_STREAM = (UNIT_DATA / "anthropic_stream_thinking_tools.sse").read_text()


RECORDED_SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"


def recorded_events(raw: str) -> list[dict[str, Any]]:
    events = []
    for frame in raw.strip().split("\n\n"):
        name, data = frame.split("\n", 1)
        parsed = orjson.loads(data.removeprefix("data: "))
        assert name == f"event: {parsed['type']}"
        events.append(parsed)
    return events


def view(chunk: chat_pb2.ChatCompletionChunk) -> dict[str, Any]:
    """The parts of a chunk a client reads, with presence kept explicit."""
    if not chunk.choices:
        usage = chunk.usage
        return {
            "usage": (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens,
                usage.prompt_tokens_details.cached_tokens,
            )
        }
    choice = chunk.choices[0]
    delta = choice.delta
    out: dict[str, Any] = {}
    for field in ("role", "content", "reasoning"):
        if delta.HasField(field):
            out[field] = getattr(delta, field)
    if delta.tool_calls:
        out["tool_calls"] = [
            (
                call.index,
                call.id if call.HasField("id") else None,
                call.function.name if call.function.HasField("name") else None,
                call.function.arguments if call.function.HasField("arguments") else None,
            )
            for call in delta.tool_calls
        ]
    if choice.HasField("finish_reason"):
        out["finish_reason"] = choice.finish_reason
    return out


def run_stream(events: list[dict[str, Any]]) -> list[chat_pb2.ChatCompletionChunk]:
    translator = StreamTranslator("anthropic", secrets=(KEY,), created=1700000000)
    chunks = [chunk for event in events for chunk in translator.feed(event)]
    assert translator.finished
    return chunks


def test_recorded_stream_becomes_the_exact_chunk_sequence() -> None:
    chunks = run_stream(recorded_events(RECORDED_STREAM))
    assert [view(chunk) for chunk in chunks] == [
        {"role": "assistant", "content": ""},
        {"reasoning": "I need the weather "},
        {"reasoning": "and the time."},
        {"content": "Let me check."},
        {"tool_calls": [(0, f"toolu_01T1x1fJ34qAmk2tNTrN7Up6__ts_{RECORDED_SIGNATURE}", "get_weather", "")]},
        {"tool_calls": [(0, None, None, '{"city": "Par')]},
        {"tool_calls": [(0, None, None, 'is"}')]},
        {"tool_calls": [(1, "toolu_01VNtmGAq5iR8mbVWg5CNAXa", "get_time", "")]},
        {"tool_calls": [(1, None, None, "{}")]},
        {"finish_reason": "tool_calls"},
        {"usage": (572, 89, 661, 100)},
    ]
    for chunk in chunks:
        assert (chunk.id, chunk.object, chunk.created, chunk.model) == (
            "msg_014p7gG3wDgGV9EUtLvnow3U",
            "chat.completion.chunk",
            1700000000,
            "claude-sonnet-4-5-20250929",
        )
    assert all(
        call.type == "function"
        for c in chunks
        for ch in c.choices
        for call in ch.delta.tool_calls
        if call.HasField("id")
    )


def test_usage_is_always_sent_and_the_first_chunk_carries_the_prompt_count() -> None:
    """The gateway meters every stream: the usage chunk comes whatever the client asked (the gateway
    takes it out for a client that did not), and message_start's prompt count rides on the first
    chunk, so a stream the client leaves early is still charged its prompt."""
    chunks = run_stream(recorded_events(RECORDED_STREAM))
    first = chunks[0].usage
    assert chunks[0].HasField("usage") and chunks[0].choices
    assert (first.prompt_tokens, first.completion_tokens, first.total_tokens) == (572, 0, 572)
    assert first.prompt_tokens_details.cached_tokens == 100
    assert [chunk.HasField("usage") for chunk in chunks[1:-1]] == [False] * (len(chunks) - 2)
    assert view(chunks[-1]) == {"usage": (572, 89, 661, 100)}


def test_cumulative_usage_in_message_delta_replaces_the_start_counts() -> None:
    events = recorded_events(RECORDED_STREAM)
    events[-2]["usage"] = {"input_tokens": 500, "cache_read_input_tokens": 100, "output_tokens": 90}
    assert view(run_stream(events)[-1]) == {"usage": (600, 90, 690, 100)}


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
        ("refusal", "content_filter"),
    ],
)
def test_stream_finish_reasons(stop_reason: str, expected: str) -> None:
    events = recorded_events(RECORDED_STREAM)
    events[-2]["delta"]["stop_reason"] = stop_reason
    assert view(run_stream(events)[-2]) == {"finish_reason": expected}


def test_events_before_message_start_are_a_shape_error() -> None:
    translator = StreamTranslator("anthropic")
    assert translator.feed({"type": "ping"}) == []
    with pytest.raises(AnthropicShapeError):
        translator.feed(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}}
        )


def test_json_delta_for_a_block_that_is_not_a_tool_is_a_shape_error() -> None:
    events = recorded_events(RECORDED_STREAM)[:1]
    events.append(
        {
            "type": "content_block_delta",
            "index": 7,
            "delta": {"type": "input_json_delta", "partial_json": "{"},
        }
    )
    with pytest.raises(AnthropicShapeError):
        run_stream(events)


def test_unknown_event_and_delta_types_are_skipped() -> None:
    events = recorded_events(RECORDED_STREAM)
    events.insert(
        2, {"type": "content_block_delta", "index": 1, "delta": {"type": "citations_delta", "citation": {}}}
    )
    events.insert(2, {"type": "brand_new_event"})
    assert len(run_stream(events)) == 11


@pytest.mark.parametrize(
    ("error_type", "cls", "status"),
    [
        ("overloaded_error", UpstreamOverloaded, 502),
        ("api_error", UpstreamError, 502),
        ("rate_limit_error", RateLimited, 429),
        ("invalid_request_error", InvalidRequest, 400),
    ],
)
def test_error_event_mid_stream_raises_the_mapped_error(
    error_type: str, cls: type[GatewayError], status: int
) -> None:
    translator = StreamTranslator("anthropic", secrets=(KEY,))
    translator.feed(recorded_events(RECORDED_STREAM)[0])
    error = {"type": "error", "error": {"type": error_type, "message": f"Trouble with {KEY}"}}
    with pytest.raises(cls) as caught:
        translator.feed(error)
    assert caught.value.kind.http_status == status
    assert KEY not in str(caught.value.envelope())


# --- errors -----------------------------------------------------------------------------------


def anthropic_error(error_type: str, message: str) -> bytes:
    return orjson.dumps(
        {"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_1"}
    )


@pytest.mark.parametrize(
    ("status", "error_type", "cls", "http_status"),
    [
        (400, "invalid_request_error", InvalidRequest, 400),
        (401, "authentication_error", UpstreamError, 502),
        (402, "billing_error", UpstreamError, 502),
        (403, "permission_error", UpstreamError, 502),
        (404, "not_found_error", UpstreamError, 502),
        (413, "request_too_large", InvalidRequest, 400),
        (429, "rate_limit_error", RateLimited, 429),
        (500, "api_error", UpstreamError, 502),
        (504, "timeout_error", RequestTimeout, 408),
        (529, "overloaded_error", UpstreamOverloaded, 502),
    ],
)
def test_error_mapping_never_leaks_the_key(
    status: int, error_type: str, cls: type[GatewayError], http_status: int
) -> None:
    body = anthropic_error(error_type, f"Something about key {KEY} went wrong")
    error = error_from_response("anthropic", status, body, "7", (KEY,))
    assert type(error) is cls
    assert error.upstream_status == status
    assert error.kind.http_status == http_status
    assert KEY not in str(error.envelope())
    assert KEY not in error.message


def test_invalid_request_passes_anthropics_words_on() -> None:
    body = anthropic_error(
        "invalid_request_error", "messages.0.content.0.text: text content blocks must be non-empty"
    )
    error = error_from_response("anthropic", 400, body, None, (KEY,))
    assert error.message == "messages.0.content.0.text: text content blocks must be non-empty"
    assert error.envelope()["error"]["type"] == "invalid_request_error"


def test_credentials_errors_pass_anthropics_words_on_without_the_key() -> None:
    key = "sk-ant-api03-secret-0123456789"
    error = error_from_response(
        "anthropic", 401, anthropic_error("authentication_error", f"invalid x-api-key {key}"), None, (key,)
    )
    assert "invalid x-api-key" in error.message and key not in error.message
    assert "credentials (HTTP 401, authentication_error)" in error.message


@pytest.mark.parametrize(("status", "error_type"), [(429, "rate_limit_error"), (529, "overloaded_error")])
def test_retry_after_is_kept(status: int, error_type: str) -> None:
    error = error_from_response("anthropic", status, anthropic_error(error_type, "slow down"), "12", ())
    assert error.retry_after == 12.0


def test_overloaded_is_a_502_not_a_rate_limit() -> None:
    error = error_from_response("anthropic", 529, anthropic_error("overloaded_error", "Overloaded"), None, ())
    assert isinstance(error, UpstreamError)
    assert error.envelope()["error"]["type"] == "upstream_error"
    assert "overloaded" in error.message


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (413, InvalidRequest),
        (502, UpstreamError),
        (503, UpstreamOverloaded),
        (529, UpstreamOverloaded),
        (429, RateLimited),
        (418, InvalidRequest),
    ],
)
def test_bodies_that_are_not_anthropics_fall_back_to_the_status(status: int, cls: type[GatewayError]) -> None:
    error = error_from_response("anthropic", status, b"<html>413 Request Entity Too Large</html>", None, ())
    assert type(error) is cls


def test_error_event_without_an_error_object() -> None:
    assert isinstance(error_from_event("anthropic", {"type": "error"}, ()), UpstreamError)
