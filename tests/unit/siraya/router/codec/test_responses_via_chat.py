"""Serving the Responses API on a chat-completions upstream: request, whole reply and stream."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from server.errors import InvalidRequest, UpstreamError
from server.providers.responses_via_chat import (
    ChatStreamToResponseEvents,
    chat_completion_to_response,
    response_params_to_chat,
    responses_param,
)
from siraya.router.codec import responses as codec
from siraya.router.codec.fields import struct_to_dict
from siraya.router.v1 import chat_pb2, common_pb2, responses_pb2
from tests.openapi_schema import assert_matches_schema

ROLE = chat_pb2.ChatRole
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}
PERSON_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def _params(**body: Any) -> responses_pb2.ResponseParams:
    return codec.decode_response_request({"model": "gpt-translated", **body})


def _encoded(events: list[responses_pb2.ResponseStreamEvent]) -> list[dict[str, Any]]:
    return [orjson.loads(codec.encode_response_event(event)) for event in events]


# --- request ----------------------------------------------------------------------------------


def test_multi_turn_input_with_function_calls_becomes_chat_messages() -> None:
    params = _params(
        instructions="You are terse.",
        input=[
            {"role": "developer", "content": "Use metric units."},
            {"role": "user", "content": "Weather in Paris and Lyon?"},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "two calls"}]},
            {
                "id": "msg_1",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "annotations": [], "text": "Checking both."}],
            },
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
            },
            {
                "type": "function_call",
                "call_id": "call_2",
                "name": "get_weather",
                "arguments": '{"city":"Lyon"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
            {
                "type": "function_call_output",
                "call_id": "call_2",
                "output": [{"type": "input_text", "text": "16C"}],
            },
            {
                "type": "function_call",
                "call_id": "call_3",
                "name": "get_weather",
                "arguments": '{"city":"Nice"}',
            },
            {"type": "function_call_output", "call_id": "call_3", "output": "22C"},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "And this one?"},
                    {"type": "input_image", "image_url": "https://example.com/x.png", "detail": "low"},
                    {
                        "type": "input_file",
                        "file_data": "data:application/pdf;base64,AAA",
                        "filename": "a.pdf",
                    },
                ],
            },
        ],
        tools=[WEATHER_TOOL],
    )
    chat = response_params_to_chat(params)
    messages = chat.messages
    assert [m.role for m in messages] == [
        ROLE.CHAT_ROLE_SYSTEM,
        ROLE.CHAT_ROLE_DEVELOPER,
        ROLE.CHAT_ROLE_USER,
        ROLE.CHAT_ROLE_ASSISTANT,
        ROLE.CHAT_ROLE_TOOL,
        ROLE.CHAT_ROLE_TOOL,
        ROLE.CHAT_ROLE_ASSISTANT,
        ROLE.CHAT_ROLE_TOOL,
        ROLE.CHAT_ROLE_USER,
    ]
    assert messages[0].text == "You are terse." and messages[1].text == "Use metric units."
    assert messages[2].text == "Weather in Paris and Lyon?"
    # The reasoning item is dropped; the assistant text and both calls are one chat turn.
    turn = messages[3]
    assert turn.text == "Checking both." and not turn.HasField("reasoning")
    assert [(c.id, c.type, c.function.name, c.function.arguments) for c in turn.tool_calls] == [
        ("call_1", "function", "get_weather", '{"city":"Paris"}'),
        ("call_2", "function", "get_weather", '{"city":"Lyon"}'),
    ]
    assert (messages[4].tool_call_id, messages[4].text) == ("call_1", "18C")
    assert (messages[5].tool_call_id, messages[5].text) == ("call_2", "16C")
    assert not messages[6].HasField("content") and [c.id for c in messages[6].tool_calls] == ["call_3"]
    assert (messages[7].tool_call_id, messages[7].text) == ("call_3", "22C")
    parts = messages[8].parts.parts
    assert [p.WhichOneof("part") for p in parts] == ["text", "image_url", "file"]
    assert parts[1].image_url.url == "https://example.com/x.png" and parts[1].image_url.detail == "low"
    assert parts[2].file.filename == "a.pdf" and parts[2].file.file_data.startswith("data:application/pdf")
    function = chat.tools[0].function
    assert chat.tools[0].type == "function" and function.name == "get_weather" and function.strict is True
    assert function.parameters_json == orjson.dumps(WEATHER_TOOL["parameters"])


def test_reasoning_before_signed_calls_becomes_the_turns_reasoning() -> None:
    """The summary returns as `reasoning` only where a thinking signature needs it (Anthropic's tool loop)."""

    def turns(call_id: str, *, between: list[dict[str, Any]]) -> list[chat_pb2.ChatMessage]:
        params = _params(
            input=[
                {"role": "user", "content": "Weather?"},
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [{"type": "summary_text", "text": "Look it up."}],
                },
                *between,
                {"type": "function_call", "call_id": call_id, "name": "get_weather", "arguments": "{}"},
                {"type": "function_call_output", "call_id": call_id, "output": "18C"},
            ],
            tools=[WEATHER_TOOL],
        )
        return [m for m in response_params_to_chat(params).messages if m.role == ROLE.CHAT_ROLE_ASSISTANT]

    assert turns("toolu_1__ts_c2ln", between=[])[0].reasoning == "Look it up."
    text = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]}
    signed_after_text = turns("toolu_1__ts_c2ln", between=[text])
    assert len(signed_after_text) == 1 and signed_after_text[0].reasoning == "Look it up."
    assert not turns("call_1", between=[])[0].HasField("reasoning")
    user = {"role": "user", "content": "And now?"}
    assert not turns("toolu_1__ts_c2ln", between=[user])[0].HasField("reasoning")


def test_chat_paths_in_errors_map_back_to_the_responses_input() -> None:
    params = _params(
        instructions="Be brief.",
        input=[
            {"role": "user", "content": "Weather?"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "18C"},
            {"type": "function_call_output", "call_id": "c2", "output": "16C"},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "And this?"},
                    {"type": "input_image", "image_url": "https://10.0.0.1/x.png"},
                ],
            },
        ],
        tools=[WEATHER_TOOL],
    )
    origins: list[str] = []
    chat = response_params_to_chat(params, origins)
    assert origins == ["instructions", "input[0]", "input[2]", "input[4]", "input[5]", "input[6]"]
    assert len(origins) == len(chat.messages)
    assert responses_param(params, "messages[5].content[1].image_url") == "input[6].content[1].image_url"
    assert responses_param(params, "messages[0]") == "instructions"
    assert responses_param(params, "messages[9].content[0]") == "messages[9].content[0]"
    assert responses_param(params, "temperature") == "temperature"
    assert responses_param(params, None) is None
    assert responses_param(_params(input="hi"), "messages[0].content") == "input.content"


def test_settings_map_to_their_chat_equivalents() -> None:
    params = _params(
        input="hi",
        tool_choice={"type": "function", "name": "get_weather"},
        tools=[WEATHER_TOOL],
        text={
            "format": {"type": "json_schema", "name": "person", "schema": PERSON_SCHEMA},
            "verbosity": "low",
        },
        max_output_tokens=100,
        temperature=0.0,
        top_p=0.9,
        parallel_tool_calls=False,
        metadata={"k": "v"},
        user="u",
        service_tier="flex",
        store=False,
        top_logprobs=2,
        safety_identifier="sid",
        prompt_cache_key="pck",
        reasoning={"effort": "high", "summary": "auto"},
        include=["reasoning.encrypted_content"],
        truncation="auto",
        models=["fallback"],
        provider={"only": ["groq"]},
        top_k=5,
    )
    chat = response_params_to_chat(params)
    assert chat.model == "gpt-translated" and chat.messages[0].text == "hi"
    assert chat.tool_choice.named.type == "function" and chat.tool_choice.named.name == "get_weather"
    assert chat.response_format.type == "json_schema" and chat.response_format.json_schema.name == "person"
    assert chat.response_format.json_schema.schema_json == orjson.dumps(PERSON_SCHEMA)
    assert chat.verbosity == "low"
    assert chat.max_completion_tokens == 100 and not chat.HasField("max_tokens")
    assert chat.HasField("temperature") and chat.temperature == 0.0 and chat.top_p == 0.9
    assert chat.parallel_tool_calls is False and chat.store is False
    assert dict(chat.metadata) == {"k": "v"} and chat.user == "u" and chat.service_tier == "flex"
    assert chat.logprobs is True and chat.top_logprobs == 2
    assert chat.safety_identifier == "sid" and chat.prompt_cache_key == "pck"
    assert chat.reasoning_effort == "high"
    assert list(chat.routing.models) == ["fallback"] and list(chat.routing.provider.only) == ["groq"]
    assert struct_to_dict(chat.extra_body) == {"top_k": 5}


def test_plain_settings_and_allowed_tools() -> None:
    chat = response_params_to_chat(
        _params(
            input="hi",
            tool_choice={
                "type": "allowed_tools",
                "mode": "required",
                "tools": [{"type": "function", "name": "f"}],
            },
            text={"format": {"type": "json_object"}},
            top_logprobs=0,
        )
    )
    assert struct_to_dict(chat.tool_choice.other) == {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "f"}}]},
    }
    assert chat.response_format.type == "json_object"
    assert not chat.HasField("logprobs") and not chat.HasField("top_logprobs")
    assert response_params_to_chat(_params(input="x", tool_choice="required")).tool_choice.mode == "required"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x", "tools": [WEATHER_TOOL, {"type": "web_search_preview"}]}, "tools[1]"),
        (
            {
                "input": [
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b"},
                    {"role": "user", "content": "c"},
                    {"type": "web_search_call", "id": "ws_1", "status": "completed"},
                ]
            },
            "input[3]",
        ),
        ({"input": [{"id": "msg_0"}]}, "input[0]"),
        (
            {
                "input": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_text", "text": "a"},
                            {"type": "input_image", "file_id": "file-1"},
                        ],
                    }
                ]
            },
            "input[0].content[1]",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_url": "https://x"}]}]},
            "input[0].content[0]",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_audio", "data": "x"}]}]},
            "input[0].content[0]",
        ),
        (
            {
                "input": [
                    {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_image"}]}
                ]
            },
            "input[0].output[0]",
        ),
        ({"input": "x", "tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
        ({"input": "x", "text": {"format": {"type": "grammar", "syntax": "lark"}}}, "text.format"),
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"input": "x", "background": True}, "background"),
    ],
)
def test_what_chat_cannot_express_is_refused(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        response_params_to_chat(_params(**body))
    assert caught.value.param == param
    assert caught.value.code == "unsupported_parameter"


# --- whole completion -------------------------------------------------------------------------


def _completion(
    message: chat_pb2.ChatCompletionMessage, finish_reason: str = "stop"
) -> chat_pb2.ChatCompletion:
    return chat_pb2.ChatCompletion(
        id="chatcmpl-1",
        object="chat.completion",
        created=1741476777,
        model="llama-3.3-70b",
        choices=[chat_pb2.ChatCompletionChoice(index=0, message=message, finish_reason=finish_reason)],
        usage=common_pb2.Usage(
            prompt_tokens=40,
            completion_tokens=12,
            total_tokens=52,
            prompt_tokens_details=common_pb2.PromptTokensDetails(cached_tokens=8, cache_creation_tokens=5),
            completion_tokens_details=common_pb2.CompletionTokensDetails(reasoning_tokens=3),
            cost=0.0004,
        ),
        provider="groq",
    )


def test_completion_with_text_reasoning_and_tool_calls() -> None:
    params = _params(input="weather?", instructions="be terse", tools=[WEATHER_TOOL], metadata={"k": "v"})
    message = chat_pb2.ChatCompletionMessage(
        role="assistant",
        content="Checking.",
        reasoning="Need the tool.",
        tool_calls=[
            chat_pb2.ToolCall(
                id="call_9",
                type="function",
                function=chat_pb2.FunctionCall(name="get_weather", arguments="{}"),
            )
        ],
    )
    response = chat_completion_to_response(_completion(message, "tool_calls"), params, "resp_abc")
    body = orjson.loads(codec.encode_response(response))
    assert_matches_schema(body, "Response")
    assert body["id"] == "resp_abc" and body["status"] == "completed" and body["created_at"] == 1741476777
    assert isinstance(body["completed_at"], int) and body["incomplete_details"] is None
    assert body["model"] == "llama-3.3-70b" and body["provider"] == "groq"
    reasoning, text, call = body["output"]
    assert reasoning == {
        "id": "rs_abc00",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "Need the tool."}],
    }
    assert text == {
        "id": "msg_abc01",
        "type": "message",
        "status": "completed",
        "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Checking."}],
        "role": "assistant",
    }
    assert call == {
        "id": "fc_abc02",
        "type": "function_call",
        "status": "completed",
        "arguments": "{}",
        "call_id": "call_9",
        "name": "get_weather",
    }
    assert body["usage"] == {
        "input_tokens": 40,
        "input_tokens_details": {"cache_write_tokens": 5, "cached_tokens": 8},
        "output_tokens": 12,
        "output_tokens_details": {"reasoning_tokens": 3},
        "total_tokens": 52,
        "cost": 0.0004,
    }
    # The request's settings are echoed, with OpenAI's defaults for the rest.
    assert body["instructions"] == "be terse" and body["metadata"] == {"k": "v"}
    assert body["tools"][0]["name"] == "get_weather" and body["tool_choice"] == "auto"
    assert body["text"] == {"format": {"type": "text"}}
    assert (body["temperature"], body["top_p"], body["parallel_tool_calls"]) == (1.0, 1.0, True)
    assert body["reasoning"] == {"effort": None, "summary": None} and body["truncation"] == "disabled"


def test_tool_calls_only_have_no_message_item() -> None:
    message = chat_pb2.ChatCompletionMessage(
        role="assistant",
        content="",
        tool_calls=[
            chat_pb2.ToolCall(
                id="c1", type="function", function=chat_pb2.FunctionCall(name="f", arguments="{}")
            )
        ],
    )
    response = chat_completion_to_response(_completion(message, "tool_calls"), _params(input="x"), "resp_1")
    assert [item.type for item in response.output] == ["function_call"]


@pytest.mark.parametrize(
    ("finish", "reason"), [("length", "max_output_tokens"), ("content_filter", "content_filter")]
)
def test_truncated_completion_is_incomplete(finish: str, reason: str) -> None:
    message = chat_pb2.ChatCompletionMessage(role="assistant", content="Once upon a")
    response = chat_completion_to_response(
        _completion(message, finish), _params(input="x", max_output_tokens=3), "r"
    )
    body = orjson.loads(codec.encode_response(response))
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": reason}
    assert body["completed_at"] is None and body["output"][0]["status"] == "incomplete"
    assert body["max_output_tokens"] == 3
    assert_matches_schema(body, "Response")


def test_refusal_logprobs_and_annotations() -> None:
    citation: dict[str, Any] = {
        "type": "url_citation",
        "url_citation": {"url": "https://a.b", "title": "A", "start_index": 0, "end_index": 2},
    }
    message = chat_pb2.ChatCompletionMessage(role="assistant", content="Hi", refusal="No more.")
    message.annotations.add().update(citation)
    completion = _completion(message)
    completion.choices[0].logprobs.content.add(
        token="Hi",
        logprob=-0.25,
        bytes=[72, 105],
        has_bytes=True,
        top_logprobs=[chat_pb2.TopLogprob(token="Hi", logprob=-0.25)],
    )
    body = orjson.loads(
        codec.encode_response(chat_completion_to_response(completion, _params(input="x"), "r"))
    )
    text, refusal = body["output"][0]["content"]
    assert text["annotations"] == [
        {"type": "url_citation", "url": "https://a.b", "title": "A", "start_index": 0, "end_index": 2}
    ]
    assert text["logprobs"] == [
        {
            "token": "Hi",
            "bytes": [72, 105],
            "logprob": -0.25,
            "top_logprobs": [{"token": "Hi", "bytes": [], "logprob": -0.25}],
        }
    ]
    assert refusal == {"type": "refusal", "refusal": "No more."}
    assert_matches_schema(body, "Response")


# --- stream -----------------------------------------------------------------------------------


def _chunk(
    content: str | None = None,
    tool_calls: list[chat_pb2.ToolCallDelta] | None = None,
    finish_reason: str | None = None,
    **delta: Any,
) -> chat_pb2.ChatCompletionChunk:
    choice = chat_pb2.ChatCompletionChunkChoice(
        index=0,
        delta=chat_pb2.ChatCompletionDelta(content=content, tool_calls=tool_calls or [], **delta),
        finish_reason=finish_reason,
    )
    return chat_pb2.ChatCompletionChunk(
        id="chatcmpl-1", object="chat.completion.chunk", created=1, model="llama-3.3-70b", choices=[choice]
    )


def _call_delta(
    index: int, arguments: str, call_id: str | None = None, name: str | None = None
) -> chat_pb2.ToolCallDelta:
    return chat_pb2.ToolCallDelta(
        index=index,
        id=call_id,
        type="function" if call_id else None,
        function=chat_pb2.FunctionCallDelta(name=name, arguments=arguments),
    )


USAGE_CHUNK = chat_pb2.ChatCompletionChunk(
    id="chatcmpl-1",
    model="llama-3.3-70b",
    usage=common_pb2.Usage(prompt_tokens=20, completion_tokens=9, total_tokens=29),
)


def _run(
    params: responses_pb2.ResponseParams, chunks: list[chat_pb2.ChatCompletionChunk]
) -> list[dict[str, Any]]:
    translator = ChatStreamToResponseEvents(params, "resp_s1", 1741476777)
    events = translator.start()
    for chunk in chunks:
        events += translator.feed(chunk)
    events += translator.finish()
    return _encoded(events)


def test_stream_text_then_tool_call_gives_openai_event_sequence() -> None:
    params = _params(input="weather in Paris?", tools=[WEATHER_TOOL])
    events = _run(
        params,
        [
            _chunk(content="", role="assistant"),
            _chunk(content="Let me "),
            _chunk(content="check."),
            _chunk(tool_calls=[_call_delta(0, "", call_id="call_7", name="get_weather")]),
            _chunk(tool_calls=[_call_delta(0, '{"city":')]),
            _chunk(tool_calls=[_call_delta(0, '"Paris"}')]),
            _chunk(finish_reason="tool_calls"),
            USAGE_CHUNK,
        ],
    )
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for event in events:
        assert_matches_schema(event, "ResponseStreamEvent")

    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    assert events[2] == {
        "type": "response.output_item.added",
        "item": {
            "id": "msg_s100",
            "type": "message",
            "status": "in_progress",
            "content": [],
            "role": "assistant",
        },
        "output_index": 0,
        "sequence_number": 2,
    }
    assert events[4] == {
        "type": "response.output_text.delta",
        "content_index": 0,
        "delta": "Let me ",
        "item_id": "msg_s100",
        "logprobs": [],
        "output_index": 0,
        "sequence_number": 4,
    }
    assert events[6]["text"] == "Let me check." and events[7]["part"]["text"] == "Let me check."
    assert events[8]["item"]["status"] == "completed"
    call_added = events[9]["item"]
    assert call_added == {
        "id": "fc_s101",
        "type": "function_call",
        "status": "in_progress",
        "arguments": "",
        "call_id": "call_7",
        "name": "get_weather",
    }
    assert [e["delta"] for e in events[10:12]] == ['{"city":', '"Paris"}']
    assert {e["item_id"] for e in events[10:13]} == {"fc_s101"} and {
        e["output_index"] for e in events[9:14]
    } == {1}
    assert events[12]["arguments"] == '{"city":"Paris"}' and events[12]["name"] == "get_weather"

    final = events[-1]["response"]
    assert final["status"] == "completed" and final["model"] == "llama-3.3-70b"
    assert final["output"] == [events[8]["item"], events[13]["item"]]
    assert final["usage"]["input_tokens"] == 20 and final["usage"]["total_tokens"] == 29
    assert final["tools"][0]["name"] == "get_weather"


def test_stream_reasoning_then_text_hitting_the_length_limit() -> None:
    events = _run(
        _params(input="think", max_output_tokens=5),
        [
            _chunk(reasoning="Hmm, "),
            _chunk(reasoning="ok."),
            _chunk(content="The answer"),
            _chunk(finish_reason="length"),
        ],
    )
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.incomplete",
    ]
    for event in events:
        assert_matches_schema(event, "ResponseStreamEvent")
    assert events[6]["text"] == "Hmm, ok." and events[8]["item"]["summary"] == [
        {"type": "summary_text", "text": "Hmm, ok."}
    ]
    assert events[9]["output_index"] == 1 and events[14]["item"]["status"] == "incomplete"
    final = events[-1]["response"]
    assert final["status"] == "incomplete" and final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert "usage" not in final


def test_stream_refusal_and_parallel_calls_with_late_names() -> None:
    events = _run(
        _params(input="x", tools=[WEATHER_TOOL]),
        [
            _chunk(refusal="I won't."),
            # The first delta of call 0 carries arguments but no name yet.
            _chunk(tool_calls=[_call_delta(0, '{"city"', call_id="call_a")]),
            _chunk(tool_calls=[_call_delta(0, ':"A"}', name="get_weather")]),
            _chunk(tool_calls=[_call_delta(1, '{"city":"B"}', call_id="call_b", name="get_weather")]),
            _chunk(finish_reason="tool_calls"),
        ],
    )
    types = [e["type"] for e in events]
    assert types[2:7] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.refusal.delta",
        "response.refusal.done",
        "response.content_part.done",
    ]
    assert events[3]["part"] == {"type": "refusal", "refusal": ""} and events[5]["refusal"] == "I won't."
    calls = [
        e
        for e in events
        if e["type"] == "response.output_item.added" and e["item"]["type"] == "function_call"
    ]
    assert [(e["item"]["call_id"], e["item"]["name"], e["output_index"]) for e in calls] == [
        ("call_a", "get_weather", 1),
        ("call_b", "get_weather", 2),
    ]
    done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert [e["arguments"] for e in done] == ['{"city":"A"}', '{"city":"B"}']
    # Call 0 is done before call 1 is added, as OpenAI streams them.
    assert types.index("response.function_call_arguments.done") < events.index(calls[1])
    for event in events:
        assert_matches_schema(event, "ResponseStreamEvent")


def test_upstream_failure_mid_stream_fails_the_response() -> None:
    translator = ChatStreamToResponseEvents(_params(input="x"), "resp_f", 1)
    events = translator.start() + translator.feed(_chunk(content="Partial"))
    failed = translator.fail(UpstreamError("Provider 'groq' reset the connection."))
    assert len(failed) == 1
    body = _encoded(failed)[0]
    assert body["type"] == "response.failed" and body["sequence_number"] == len(events)
    response = body["response"]
    assert response["status"] == "failed"
    assert response["error"] == {"code": "server_error", "message": "Provider 'groq' reset the connection."}
    assert response["output"][0]["status"] == "incomplete"
    assert response["output"][0]["content"][0]["text"] == "Partial"
    assert_matches_schema(body, "ResponseStreamEvent")
    limited = ChatStreamToResponseEvents(_params(input="x"), "resp_g", 1).fail(
        common_pb2.ErrorObject(message="slow down", type="rate_limit_error", code="rate_limit_exceeded")
    )
    assert _encoded(limited)[0]["response"]["error"]["code"] == "rate_limit_exceeded"


def test_stream_echoes_provider_and_ignores_other_choices() -> None:
    chunk = _chunk(content="a")
    chunk.provider = "groq"
    chunk.choices.add(index=1, delta=chat_pb2.ChatCompletionDelta(content="other"))
    events = _run(_params(input="x"), [chunk])
    assert "".join(e.get("delta", "") for e in events) == "a"
    assert events[-1]["response"]["provider"] == "groq"
