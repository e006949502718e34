"""The Gemini adapter's pure translations, both ways, from OpenAI bodies and recorded Gemini bodies."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from server.errors import (
    GatewayError,
    InvalidRequest,
    NotFound,
    RateLimited,
    RequestTimeout,
    UpstreamError,
    UpstreamOverloaded,
)
from server.providers.gemini.errors import error_from_body, parse_retry_delay
from server.providers.gemini.media import (
    aspect_ratio,
    embed_request,
    embedding_list,
    gemini_image_request,
    imagen_request,
    images_from_gemini,
    images_from_imagen,
    is_imagen,
)
from server.providers.gemini.request import (
    CHAT_SUPPORT,
    THINKING_BUDGETS,
    generate_content_request,
    media_references,
    thinking_config,
)
from server.providers.gemini.response import MalformedResponse, chat_completion, finish_reason, usage_from
from server.providers.gemini.stream import ChunkTranslator
from server.providers.gemini.tool_ids import split_tool_call_id
from server.providers.gemini.video import (
    VideoRef,
    decode_video_id,
    encode_video_id,
    new_video,
    operation_name,
    video_file,
    video_from_operation,
    video_request,
)
from server.providers.param_policy import enforce_chat_support
from server.providers.remote_media import Media, parse_data_url
from siraya.router.codec.chat import encode_chat_completion
from siraya.router.codec.chat_request import decode_chat_request
from siraya.router.v1 import chat_pb2, embeddings_pb2, images_pb2, videos_pb2
from tests.openapi_schema import assert_matches_schema

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
)
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
KEY = "AIzaSy-secret-gemini-key-0123456789"
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def _assert_openai_shape(completion: chat_pb2.ChatCompletion) -> None:
    body = orjson.loads(encode_chat_completion(completion))
    assert "system_fingerprint" not in body  # Gemini has none, and the spec types it as a string.
    assert_matches_schema(body, "CreateChatCompletionResponse")


def _params(**body: Any) -> chat_pb2.ChatCompletionParams:
    body.setdefault("model", "gemini-test")
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return decode_chat_request(body)


def _request(
    model: str = "gemini-2.5-flash", media: dict[str, Media] | None = None, **body: Any
) -> dict[str, Any]:
    params = _params(**body)
    if media is None:
        media = {ref.param: parse_data_url(ref.url, ref.param) for ref in media_references(params)}
    return generate_content_request(params, model, media)


# -- request: messages ------------------------------------------------------------------------


def test_system_and_developer_messages_become_the_system_instruction_in_order() -> None:
    body = _request(
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello"},
            {"role": "developer", "content": [{"type": "text", "text": "answer in French"}]},
            {"role": "assistant", "content": "bonjour"},
            {"role": "user", "content": "again"},
        ]
    )
    assert body["systemInstruction"] == {"parts": [{"text": "be brief"}, {"text": "answer in French"}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "hello"}]},
        {"role": "model", "parts": [{"text": "bonjour"}]},
        {"role": "user", "parts": [{"text": "again"}]},
    ]
    assert "generationConfig" not in body and "tools" not in body


def test_a_system_only_request_is_sent_as_the_user_turn() -> None:
    body = _request(messages=[{"role": "system", "content": "say hi"}])
    assert body == {"contents": [{"role": "user", "parts": [{"text": "say hi"}]}]}


def test_images_pdfs_and_audio_are_inlined() -> None:
    pdf = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4 tiny").decode()
    params = _params(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": PNG_URL}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"},
                    },
                    {"type": "file", "file": {"file_data": pdf, "filename": "a.pdf"}},
                    {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                ],
            }
        ]
    )
    refs = media_references(params)
    assert [ref.param for ref in refs] == [
        "messages[0].content[1].image_url",
        "messages[0].content[2].image_url",
        "messages[0].content[3].file",
    ]
    fetched = {
        refs[0].param: parse_data_url(refs[0].url, refs[0].param),
        refs[1].param: Media(data=b"\xff\xd8\xffjpeg", media_type="image/jpeg"),
        refs[2].param: parse_data_url(refs[2].url, refs[2].param),
    }
    parts = generate_content_request(params, "gemini-2.5-flash", fetched)["contents"][0]["parts"]
    assert parts == [
        {"text": "what is this"},
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}},
        {"inlineData": {"mimeType": "image/jpeg", "data": base64.b64encode(b"\xff\xd8\xffjpeg").decode()}},
        {"inlineData": {"mimeType": "application/pdf", "data": base64.b64encode(b"%PDF-1.4 tiny").decode()}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
    ]


def test_file_ids_and_non_data_file_payloads_are_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        media_references(
            _params(messages=[{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}])
        )
    assert caught.value.param == "messages[0].content[0].file.file_id"
    with pytest.raises(InvalidRequest):
        media_references(
            _params(
                messages=[{"role": "user", "content": [{"type": "file", "file": {"file_data": "JVBERi0="}}]}]
            )
        )


def test_media_outside_user_turns_is_refused_without_being_fetched() -> None:
    content = [
        {"type": "text", "text": "rules"},
        {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}},
    ]
    params = _params(messages=[{"role": "system", "content": content}, {"role": "user", "content": "hi"}])
    assert media_references(params) == []
    with pytest.raises(InvalidRequest) as caught:
        generate_content_request(params, "gemini-2.5-flash", {})
    assert caught.value.param == "messages[0].content[1]"


def test_the_function_role_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        _request(
            messages=[{"role": "user", "content": "x"}, {"role": "function", "name": "f", "content": "1"}]
        )
    assert caught.value.param == "messages[1].role"


# -- request: tools -----------------------------------------------------------------------------


def test_tools_are_declared_with_their_json_schema_unchanged() -> None:
    body = _request(tools=[WEATHER_TOOL])
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parametersJsonSchema": WEATHER_TOOL["function"]["parameters"],
                }
            ]
        }
    ]
    assert "toolConfig" not in body


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice_modes(choice: Any, config: dict[str, Any]) -> None:
    body = _request(tools=[WEATHER_TOOL], tool_choice=choice)
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_allowed_tools_restrict_the_declarations_or_the_allowed_names() -> None:
    other = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
    allowed = {"mode": "auto", "tools": [{"type": "function", "function": {"name": "get_time"}}]}
    body = _request(
        tools=[WEATHER_TOOL, other], tool_choice={"type": "allowed_tools", "allowed_tools": allowed}
    )
    assert [d["name"] for d in body["tools"][0]["functionDeclarations"]] == ["get_time"]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    allowed["mode"] = "required"
    body = _request(
        tools=[WEATHER_TOOL, other], tool_choice={"type": "allowed_tools", "allowed_tools": allowed}
    )
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}
    }


def test_naming_an_undeclared_function_or_a_custom_tool_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        _request(tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "nope"}})
    with pytest.raises(InvalidRequest) as caught:
        _request(tools=[{"type": "custom", "custom": {"name": "grammar"}}])
    assert caught.value.param == "tools[0].type"


def test_a_tool_round_trip_becomes_function_call_and_function_response_parts() -> None:
    body = _request(
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "call_b__ts_c2lnbmF0dXJl",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_a", "content": '{"temp": 21}'},
            {"role": "tool", "tool_call_id": "call_b__ts_c2lnbmF0dXJl", "content": "sunny, 25C"},
            {"role": "user", "content": "thanks"},
        ],
    )
    assert body["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Rome"}},
                    "thoughtSignature": "c2lnbmF0dXJl",
                },
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                {"functionResponse": {"name": "get_weather", "response": {"output": "sunny, 25C"}}},
            ],
        },
        {"role": "user", "parts": [{"text": "thanks"}]},
    ]


def test_a_tool_message_answering_an_unknown_call_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        _request(
            messages=[
                {"role": "user", "content": "x"},
                {"role": "tool", "tool_call_id": "call_zzz", "content": "1"},
            ]
        )
    assert caught.value.param == "messages[1].tool_call_id"


def test_tool_call_arguments_must_be_a_json_object() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}
    with pytest.raises(InvalidRequest) as caught:
        _request(messages=[{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [call]}])
    assert caught.value.param == "messages[1].tool_calls[0].function.arguments"


# -- request: generation config -----------------------------------------------------------------


def test_sampling_and_length_fields_map_to_generation_config() -> None:
    body = _request(
        temperature=0,
        top_p=0.9,
        top_k=40,
        n=2,
        max_tokens=50,
        max_completion_tokens=100,
        stop=["END", "STOP"],
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        logprobs=True,
        top_logprobs=3,
    )
    assert body["generationConfig"] == {
        "temperature": 0.0,
        "topP": 0.9,
        "candidateCount": 2,
        "maxOutputTokens": 100,
        "stopSequences": ["END", "STOP"],
        "seed": 7,
        "presencePenalty": 0.5,
        "frequencyPenalty": -0.5,
        "responseLogprobs": True,
        "logprobs": 3,
        "topK": 40,
    }
    assert _request(max_tokens=50)["generationConfig"] == {"maxOutputTokens": 50}


def test_structured_output_uses_the_json_schema_as_it_is() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}, "required": ["n"]}
    body = _request(
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": schema, "strict": True},
        }
    )
    assert body["generationConfig"] == {"responseMimeType": "application/json", "responseJsonSchema": schema}
    body = _request(response_format={"type": "json_object"})
    assert body["generationConfig"] == {"responseMimeType": "application/json"}
    assert "generationConfig" not in _request(response_format={"type": "text"})


@pytest.mark.parametrize(("effort", "budget"), sorted(THINKING_BUDGETS.items()))
def test_reasoning_effort_becomes_a_thinking_budget_on_gemini_2(effort: str, budget: int) -> None:
    config = _request(reasoning_effort=effort)["generationConfig"]["thinkingConfig"]
    expected: dict[str, Any] = {"thinkingBudget": budget}
    if effort != "none":
        expected["includeThoughts"] = True
    assert config == expected


def test_reasoning_effort_becomes_a_thinking_level_on_gemini_3() -> None:
    assert thinking_config("high", "gemini-3-pro-preview") == {
        "thinkingLevel": "high",
        "includeThoughts": True,
    }
    assert thinking_config("low", "models/gemini-3-flash") == {
        "thinkingLevel": "low",
        "includeThoughts": True,
    }
    with pytest.raises(InvalidRequest):
        thinking_config("extreme", "gemini-2.5-flash")


def test_extra_body_merges_where_each_key_belongs() -> None:
    body = _request(
        temperature=1,
        extra_body={
            "generationConfig": {"responseModalities": ["TEXT"]},
            "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
            "cachedContent": "cachedContents/abc",
            "labels": {"team": "a"},
        },
    )
    assert body["generationConfig"] == {"temperature": 1.0, "responseModalities": ["TEXT"]}
    assert body["safetySettings"][0]["threshold"] == "BLOCK_NONE"
    assert body["cachedContent"] == "cachedContents/abc"
    assert body["labels"] == {"team": "a"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("logit_bias", {"50256": -100}),
        ("verbosity", "low"),
        ("audio", {"voice": "x", "format": "mp3"}),
    ],
)
def test_parameters_gemini_cannot_honour_are_refused_by_name(field: str, value: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        enforce_chat_support(_params(**{field: value}), CHAT_SUPPORT, provider="gemini")
    assert caught.value.param == field and caught.value.code == "unsupported_parameter"


def test_bookkeeping_and_no_op_parameters_are_dropped() -> None:
    dropped = enforce_chat_support(
        _params(user="u1", store=False, parallel_tool_calls=True, metadata={"a": "b"}), CHAT_SUPPORT
    )
    assert set(dropped) == {"user", "store", "parallel_tool_calls", "metadata"}
    # `false` is the gateway's to honour (it keeps one tool call): omitted upstream, never refused.
    assert enforce_chat_support(_params(parallel_tool_calls=False), CHAT_SUPPORT) == ["parallel_tool_calls"]


# -- response ------------------------------------------------------------------------------------

RECORDED_ANSWER: dict[str, Any] = {
    "candidates": [
        {
            "content": {
                "parts": [
                    {"text": "Let me think.", "thought": True},
                    {"text": "The answer "},
                    {"text": "is 4."},
                ],
                "role": "model",
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 12,
        "candidatesTokenCount": 5,
        "thoughtsTokenCount": 30,
        "cachedContentTokenCount": 8,
        "totalTokenCount": 47,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}],
    },
    "modelVersion": "gemini-2.5-flash",
    "responseId": "abcXYZ",
}


def test_text_thoughts_and_usage_with_thoughts_and_cache() -> None:
    completion = chat_completion(RECORDED_ANSWER, "gemini-2.5-flash")
    assert completion.id == "chatcmpl-abcXYZ" and completion.object == "chat.completion"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "The answer is 4."
    assert choice.message.reasoning == "Let me think."
    assert choice.finish_reason == "stop"
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (12, 35, 47)
    assert usage.completion_tokens_details.reasoning_tokens == 30
    assert usage.prompt_tokens_details.cached_tokens == 8
    _assert_openai_shape(completion)


def test_usage_without_thoughts_or_cache_leaves_the_details_unset() -> None:
    usage = usage_from({"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5})
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (3, 2, 5)
    assert not usage.HasField("prompt_tokens_details") and not usage.HasField("completion_tokens_details")
    tool_use = usage_from({"promptTokenCount": 3, "toolUsePromptTokenCount": 4, "candidatesTokenCount": 2})
    assert (tool_use.prompt_tokens, tool_use.total_tokens) == (7, 9)


@pytest.mark.parametrize(
    ("reason", "has_calls", "expected"),
    [
        ("STOP", False, "stop"),
        ("MAX_TOKENS", False, "length"),
        ("SAFETY", False, "content_filter"),
        ("RECITATION", False, "content_filter"),
        ("BLOCKLIST", False, "content_filter"),
        ("PROHIBITED_CONTENT", False, "content_filter"),
        ("SPII", False, "content_filter"),
        ("IMAGE_SAFETY", False, "content_filter"),
        ("STOP", True, "tool_calls"),
        ("MALFORMED_FUNCTION_CALL", False, "stop"),
        ("OTHER", False, "stop"),
        ("LANGUAGE", False, "stop"),
        (None, False, "stop"),
    ],
)
def test_finish_reasons(reason: str | None, has_calls: bool, expected: str) -> None:
    assert finish_reason(reason, has_calls) == expected


FUNCTION_CALL_ANSWER: dict[str, Any] = {
    "candidates": [
        {
            "content": {
                "parts": [
                    {
                        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                        "thoughtSignature": "c2lnMQ==",
                    },
                    {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
                ],
                "role": "model",
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 10, "totalTokenCount": 30},
    "modelVersion": "gemini-2.5-pro",
    "responseId": "resp-calls",
}


def test_function_calls_become_tool_calls_with_stable_ids_carrying_the_signature() -> None:
    first = chat_completion(FUNCTION_CALL_ANSWER, "gemini-2.5-pro")
    again = chat_completion(FUNCTION_CALL_ANSWER, "gemini-2.5-pro")
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert not choice.message.HasField("content")
    calls = choice.message.tool_calls
    assert [(c.type, c.function.name, c.function.arguments) for c in calls] == [
        ("function", "get_weather", '{"city":"Paris"}'),
        ("function", "get_weather", '{"city":"Rome"}'),
    ]
    assert [c.id for c in calls] == [c.id for c in again.choices[0].message.tool_calls]
    assert calls[0].id != calls[1].id and all(c.id.startswith("call_") for c in calls)
    assert split_tool_call_id(calls[0].id)[1] == "c2lnMQ==" and split_tool_call_id(calls[1].id)[1] is None
    _assert_openai_shape(first)
    # The ids come back in the next request: the signature returns to its functionCall part.
    history = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.function.name, "arguments": c.function.arguments},
                }
                for c in calls
            ],
        },
        {"role": "tool", "tool_call_id": calls[0].id, "content": "20C"},
        {"role": "tool", "tool_call_id": calls[1].id, "content": "25C"},
    ]
    contents = _request(messages=history, tools=[WEATHER_TOOL])["contents"]
    assert contents[1]["parts"][0]["thoughtSignature"] == "c2lnMQ=="
    assert "thoughtSignature" not in contents[1]["parts"][1]
    assert [p["functionResponse"]["name"] for p in contents[2]["parts"]] == ["get_weather", "get_weather"]


def test_a_blocked_prompt_is_one_empty_content_filter_choice() -> None:
    body = {
        "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        "modelVersion": "gemini-2.5-flash",
    }
    completion = chat_completion(body, "gemini-2.5-flash")
    assert [(c.index, c.finish_reason, c.message.content) for c in completion.choices] == [
        (0, "content_filter", "")
    ]
    assert completion.usage.prompt_tokens == 9 and completion.id.startswith("chatcmpl-")


def test_a_safety_stop_without_content_and_several_candidates() -> None:
    body = {
        "candidates": [
            {"content": {"parts": [{"text": "A"}], "role": "model"}, "finishReason": "STOP", "index": 0},
            {"finishReason": "SAFETY", "index": 1},
        ]
    }
    completion = chat_completion(body, "gemini-2.5-flash")
    assert [(c.index, c.message.content, c.finish_reason) for c in completion.choices] == [
        (0, "A", "stop"),
        (1, "", "content_filter"),
    ]


def test_logprobs_map_token_for_token() -> None:
    body = {
        "candidates": [
            {
                "content": {"parts": [{"text": "Hi there"}], "role": "model"},
                "finishReason": "STOP",
                "logprobsResult": {
                    "topCandidates": [
                        {
                            "candidates": [
                                {"token": "Hi", "logProbability": -0.1},
                                {"token": "Hey", "logProbability": -2.3},
                            ]
                        },
                        {"candidates": [{"token": " there", "logProbability": -0.2}]},
                    ],
                    "chosenCandidates": [
                        {"token": "Hi", "logProbability": -0.1},
                        {"token": " there", "logProbability": -0.2},
                    ],
                },
            }
        ]
    }
    logprobs = chat_completion(body, "m").choices[0].logprobs
    assert [(t.token, round(t.logprob, 3), list(t.bytes)) for t in logprobs.content] == [
        ("Hi", -0.1, [72, 105]),
        (" there", -0.2, list(b" there")),
    ]
    assert [t.token for t in logprobs.content[0].top_logprobs] == ["Hi", "Hey"]


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"candidates": "nope"},
        {},
        {"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]},
    ],
)
def test_malformed_answers_are_reported(body: Any) -> None:
    with pytest.raises(MalformedResponse):
        chat_completion(body, "m")


# -- stream ------------------------------------------------------------------------------------

RECORDED_STREAM: list[dict[str, Any]] = [
    {
        "candidates": [
            {"content": {"parts": [{"text": "Considering", "thought": True}], "role": "model"}, "index": 0}
        ],
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "resp-calls",
    },
    {
        "candidates": [{"content": {"parts": [{"text": "Checking "}], "role": "model"}, "index": 0}],
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "resp-calls",
    },
    {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {
                            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                            "thoughtSignature": "c2lnMQ==",
                        },
                        {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
                    ],
                    "role": "model",
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 7,
            "candidatesTokenCount": 12,
            "thoughtsTokenCount": 3,
            "totalTokenCount": 22,
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "resp-calls",
    },
]


def _translate(events: list[dict[str, Any]]) -> list[chat_pb2.ChatCompletionChunk]:
    translator = ChunkTranslator("gemini-2.5-flash")
    chunks = [chunk for event in events for chunk in translator.feed(event)]
    return chunks + translator.finish()


def test_stream_role_first_then_deltas_then_whole_tool_calls() -> None:
    chunks = _translate(RECORDED_STREAM)
    assert len({c.id for c in chunks}) == 1 and chunks[0].id == "chatcmpl-resp-calls"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    first, text, calls, usage = chunks
    assert first.choices[0].delta.role == "assistant" and first.choices[0].delta.reasoning == "Considering"
    assert not text.choices[0].delta.HasField("role") and text.choices[0].delta.content == "Checking "
    deltas = calls.choices[0].delta.tool_calls
    assert [(d.index, d.type, d.function.name, d.function.arguments) for d in deltas] == [
        (0, "function", "get_weather", '{"city":"Paris"}'),
        (1, "function", "get_weather", '{"city":"Rome"}'),
    ]
    assert calls.choices[0].finish_reason == "tool_calls"
    assert not usage.choices and usage.usage.completion_tokens == 15 and usage.usage.total_tokens == 22
    assert usage.usage.completion_tokens_details.reasoning_tokens == 3
    # The same response, unary or streamed, yields the same tool-call ids.
    unary = {**RECORDED_STREAM[-1], "responseId": "resp-calls"}
    assert [d.id for d in deltas] == [c.id for c in chat_completion(unary, "m").choices[0].message.tool_calls]


def test_usage_is_always_sent_and_the_first_chunk_carries_the_prompt_count() -> None:
    """The gateway meters every stream: the usage chunk comes whatever the client asked (the gateway
    takes it out for a client that did not), and the first usageMetadata's prompt count rides on the
    first chunk, so a stream the client leaves early is still charged its prompt."""
    first, text, calls, usage = _translate(RECORDED_STREAM)
    assert first.choices and (first.usage.prompt_tokens, first.usage.completion_tokens) == (7, 0)
    assert first.usage.total_tokens == 7
    assert not text.HasField("usage") and not calls.HasField("usage")
    assert not usage.choices and usage.usage.prompt_tokens == 7


def test_a_stream_without_any_usage_metadata_has_no_usage_chunk() -> None:
    """No count at all is no usage, not a zero one: the gateway then falls back to its estimate."""
    events = [{k: v for k, v in event.items() if k != "usageMetadata"} for event in RECORDED_STREAM]
    chunks = _translate(events)
    assert (
        all(not c.HasField("usage") for c in chunks) and chunks[-1].choices[0].finish_reason == "tool_calls"
    )


def test_stream_of_a_blocked_prompt() -> None:
    chunks = _translate([{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "responseId": "b"}])
    assert [
        (c.choices[0].delta.role, c.choices[0].delta.content, c.choices[0].finish_reason) for c in chunks
    ] == [("assistant", "", "content_filter")]


def test_stream_with_two_candidates_keeps_their_indexes() -> None:
    events = [
        {
            "candidates": [{"content": {"parts": [{"text": "a"}]}, "index": 0, "finishReason": "STOP"}],
            "responseId": "r",
        },
        {
            "candidates": [{"content": {"parts": [{"text": "b"}]}, "index": 1, "finishReason": "MAX_TOKENS"}],
            "responseId": "r",
        },
    ]
    chunks = _translate(events)
    assert [(c.choices[0].index, c.choices[0].delta.role, c.choices[0].finish_reason) for c in chunks] == [
        (0, "assistant", "stop"),
        (1, "assistant", "length"),
    ]


@pytest.mark.parametrize("events", [[], RECORDED_STREAM[:2]])
def test_a_stream_that_ends_early_is_malformed(events: list[dict[str, Any]]) -> None:
    with pytest.raises(MalformedResponse):
        _translate(events)


# -- embeddings ----------------------------------------------------------------------------------


def test_embeddings_request_and_answer() -> None:
    params = embeddings_pb2.EmbeddingParams(
        model="embed", texts=embeddings_pb2.StringList(values=["one", "two"]), dimensions=3
    )
    params.extra_body.update({"task_type": "RETRIEVAL_QUERY"})
    assert embed_request(params, "gemini-embedding-001") == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": text}]},
                "taskType": "RETRIEVAL_QUERY",
                "outputDimensionality": 3,
            }
            for text in ("one", "two")
        ]
    }
    result = embedding_list(
        {"embeddings": [{"values": [0.1, 0.2, 0.3]}, {"values": [0.4, 0.5, 0.6]}]}, "m", 2
    )
    assert result.object == "list" and [e.index for e in result.data] == [0, 1]
    assert [round(v, 3) for v in result.data[1].embedding] == [0.4, 0.5, 0.6]
    assert result.usage.prompt_tokens == 0
    with pytest.raises(MalformedResponse):
        embedding_list({"embeddings": [{"values": [1.0]}]}, "m", 2)


def test_token_id_embedding_input_is_decoded_to_its_text() -> None:
    # cl100k_base: "hello world" and "café" as a client's tokenizer sends them.
    single = embeddings_pb2.EmbeddingParams(model="e", tokens=embeddings_pb2.TokenIds(values=[15339, 1917]))
    assert embed_request(single, "text-embedding-004")["requests"][0]["content"] == {
        "parts": [{"text": "hello world"}]
    }
    lists = embeddings_pb2.EmbeddingParams(
        model="e",
        token_lists=embeddings_pb2.TokenIdsList(
            values=[embeddings_pb2.TokenIds(values=[15339]), embeddings_pb2.TokenIds(values=[53050])]
        ),
    )
    texts = [r["content"]["parts"][0]["text"] for r in embed_request(lists, "text-embedding-004")["requests"]]
    assert texts == ["hello", " café"]


def test_a_token_id_outside_the_vocabulary_is_a_400_naming_it() -> None:
    params = embeddings_pb2.EmbeddingParams(
        model="e",
        token_lists=embeddings_pb2.TokenIdsList(
            values=[embeddings_pb2.TokenIds(values=[15339]), embeddings_pb2.TokenIds(values=[1, 100256])]
        ),
    )
    with pytest.raises(InvalidRequest) as caught:
        embed_request(params, "text-embedding-004")
    assert caught.value.param == "input"
    assert "input[1][1] is 100256" in caught.value.message


# -- images ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "ratio"),
    [
        ("1024x1024", "1:1"),
        ("1792x1024", "16:9"),
        ("1024x1792", "9:16"),
        ("1536x1024", "4:3"),
        ("1024x1536", "3:4"),
        ("auto", None),
    ],
)
def test_sizes_map_to_the_nearest_imagen_aspect_ratio(size: str, ratio: str | None) -> None:
    from server.providers.gemini.media import IMAGEN_RATIOS

    assert aspect_ratio(size, IMAGEN_RATIOS) == ratio


def test_imagen_request_and_answer() -> None:
    assert is_imagen("imagen-4.0-generate-001") and not is_imagen("gemini-2.5-flash-image")
    params = images_pb2.ImageParams(
        prompt="a fox", n=2, size="1792x1024", output_format="jpeg", response_format="b64_json"
    )
    assert imagen_request(params) == {
        "instances": [{"prompt": "a fox"}],
        "parameters": {"sampleCount": 2, "aspectRatio": "16:9", "outputOptions": {"mimeType": "image/jpeg"}},
    }
    body = {
        "predictions": [{"mimeType": "image/jpeg", "bytesBase64Encoded": "AAA="}, {"raiFilteredReason": "x"}]
    }
    result = images_from_imagen(body, params)
    assert [image.b64_json for image in result.data] == ["AAA="] and result.output_format == "jpeg"
    assert result.size == "1792x1024" and result.created > 0
    with pytest.raises(InvalidRequest) as caught:
        images_from_imagen({}, params)
    assert caught.value.code == "content_policy_violation"


def test_images_refuse_url_responses() -> None:
    with pytest.raises(InvalidRequest) as caught:
        imagen_request(images_pb2.ImageParams(prompt="x", response_format="url"))
    assert caught.value.param == "response_format"


def test_gemini_image_request_and_answer() -> None:
    params = images_pb2.ImageParams(prompt="a fox", size="1536x1024")
    assert gemini_image_request(params) == {
        "contents": [{"role": "user", "parts": [{"text": "a fox"}]}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio": "3:2"}},
    }
    answer = {
        "candidates": [
            {
                "content": {
                    "parts": [{"text": "Here"}, {"inlineData": {"mimeType": "image/png", "data": "iVBO"}}]
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1290, "totalTokenCount": 1294},
    }
    result = images_from_gemini([answer, answer], params)
    assert [image.b64_json for image in result.data] == ["iVBO", "iVBO"] and result.output_format == "png"
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.total_tokens) == (
        8,
        2580,
        2588,
    )


# -- videos ---------------------------------------------------------------------------------------


def test_veo_request_maps_seconds_size_and_the_starting_frame() -> None:
    params = videos_pb2.VideoParams(prompt="waves", seconds="8", size="1080x1920")
    body = video_request(params, Media(data=PNG, media_type="image/png"))
    assert body == {
        "instances": [
            {
                "prompt": "waves",
                "image": {"bytesBase64Encoded": base64.b64encode(PNG).decode(), "mimeType": "image/png"},
            }
        ],
        "parameters": {"durationSeconds": 8, "aspectRatio": "9:16", "resolution": "1080p"},
    }
    assert video_request(videos_pb2.VideoParams(prompt="p", size="1280x720"), None) == {
        "instances": [{"prompt": "p"}],
        "parameters": {"aspectRatio": "16:9"},
    }
    with pytest.raises(InvalidRequest):
        video_request(videos_pb2.VideoParams(prompt="p", seconds="four"), None)


def test_a_veo_job_from_creation_to_download() -> None:
    name = "models/veo-3.0-generate-001/operations/abc123"
    ref = VideoRef(
        operation=operation_name({"name": name}), created_at=1_700_000_000, seconds="8", size="1280x720"
    )
    video_id = encode_video_id(ref)
    assert "/" not in video_id and "=" not in video_id and decode_video_id(video_id) == ref
    created = new_video(ref, video_id, videos_pb2.VideoParams(prompt="waves"))
    assert (created.status, created.progress, created.object, created.prompt) == (
        "queued",
        0,
        "video",
        "waves",
    )
    assert created.expires_at == created.created_at + 2 * 24 * 3600

    sequence = [
        {"name": name},
        {
            "name": name,
            "metadata": {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.Operation"},
        },
        {
            "name": name,
            "done": True,
            "response": {
                "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
                "generateVideoResponse": {
                    "generatedSamples": [
                        {
                            "video": {
                                "uri": "https://generativelanguage.googleapis.com/v1beta/files/f1:download?alt=media"
                            }
                        }
                    ]
                },
            },
        },
    ]
    states = [video_from_operation(op, ref, video_id) for op in sequence]
    assert [(v.status, v.progress) for v in states] == [
        ("in_progress", 0),
        ("in_progress", 0),
        ("completed", 100),
    ]
    assert all(v.id == video_id and v.size == "1280x720" and v.seconds == "8" for v in states)
    with pytest.raises(InvalidRequest) as caught:
        video_file(sequence[0])
    assert caught.value.code == "video_not_ready"
    file = video_file(sequence[-1])
    assert file.uri is not None and file.uri.endswith("files/f1:download?alt=media")
    assert file.content_type == "video/mp4" and file.data is None


def test_a_veo_job_that_fails_or_is_filtered() -> None:
    ref = VideoRef("models/veo/operations/x", 1, "8", "1280x720")
    failed = video_from_operation(
        {
            "name": "x",
            "done": True,
            "error": {"code": 3, "message": "bad prompt", "status": "INVALID_ARGUMENT"},
        },
        ref,
        "id",
    )
    assert (failed.status, failed.error.code, failed.error.message) == (
        "failed",
        "INVALID_ARGUMENT",
        "bad prompt",
    )
    filtered = video_from_operation(
        {
            "name": "x",
            "done": True,
            "response": {
                "generateVideoResponse": {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": ["Unsafe."]}
            },
        },
        ref,
        "id",
    )
    assert (filtered.status, filtered.error.code, filtered.error.message) == (
        "failed",
        "content_policy_violation",
        "Unsafe.",
    )


def test_inline_encoded_videos_and_bad_ids() -> None:
    operation = {
        "done": True,
        "response": {"generateVideoResponse": {"generatedSamples": [{"video": {"encodedVideo": "AAECAw"}}]}},
    }
    assert video_file(operation).data == b"\x00\x01\x02\x03"
    with pytest.raises(NotFound):
        decode_video_id("not-a-video-id")


# -- errors ---------------------------------------------------------------------------------------


def _google(code: int, status: str, message: str, *details: dict[str, Any]) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return orjson.dumps({"error": error}, option=orjson.OPT_INDENT_2)


RETRY_INFO = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}
KEY_INVALID = {
    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
    "reason": "API_KEY_INVALID",
    "domain": "googleapis.com",
    "metadata": {"service": "generativelanguage.googleapis.com"},
}


@pytest.mark.parametrize(
    ("http", "body", "retry_after", "kind", "delay"),
    [
        (400, _google(400, "INVALID_ARGUMENT", f"Bad field; key {KEY} was sent"), None, InvalidRequest, None),
        (
            400,
            _google(400, "FAILED_PRECONDITION", "User location is not supported."),
            None,
            InvalidRequest,
            None,
        ),
        (
            400,
            _google(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", KEY_INVALID),
            None,
            UpstreamError,
            None,
        ),
        (401, _google(401, "UNAUTHENTICATED", f"Key {KEY} is unknown"), None, UpstreamError, None),
        (403, _google(403, "PERMISSION_DENIED", f"Key {KEY} has no access"), None, UpstreamError, None),
        (
            404,
            _google(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta"),
            None,
            UpstreamError,
            None,
        ),
        (429, _google(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", RETRY_INFO), "5", RateLimited, 37.0),
        (429, _google(429, "RESOURCE_EXHAUSTED", "Quota exceeded."), "12", RateLimited, 12.0),
        (500, _google(500, "INTERNAL", "An internal error has occurred."), None, UpstreamError, None),
        (503, _google(503, "UNAVAILABLE", "The model is overloaded."), None, UpstreamOverloaded, None),
        (503, b"<html><body>Service Unavailable</body></html>", "3", UpstreamOverloaded, 3.0),
        (
            504,
            _google(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
            None,
            RequestTimeout,
            None,
        ),
        (502, b"<html><body>Bad Gateway</body></html>", None, UpstreamError, None),
        (
            400,
            b'[{"error": {"code": 400, "message": "Bad.", "status": "INVALID_ARGUMENT"}}]',
            None,
            InvalidRequest,
            None,
        ),
    ],
)
def test_error_mapping(
    http: int, body: bytes, retry_after: str | None, kind: type[GatewayError], delay: float | None
) -> None:
    error = error_from_body("gemini", http, body, retry_after, (KEY,))
    assert type(error) is kind
    assert error.upstream_status == http
    assert error.retry_after == delay
    assert KEY not in error.message and KEY not in orjson.dumps(error.envelope()).decode()
    if kind is InvalidRequest and b"Bad field" in body:
        assert "***" in error.message
    if http in (401, 403) or b"API_KEY_INVALID" in body:
        # Google's words pass on (they say what to fix), scrubbed of the key.
        assert "credentials" in error.message and KEY not in error.message


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("38s", 38.0), ("0.5s", 0.5), ("1.250s", 1.25), ("99999s", 3600.0), ("soon", None), (3, None)],
)
def test_retry_delays(value: Any, seconds: float | None) -> None:
    assert parse_retry_delay(value) == seconds
