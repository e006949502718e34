"""Chat completions through the official OpenAI SDK against the running bridge."""

from __future__ import annotations

import json

import httpx
import openai

from tests.e2e.harness import GatewayHarness
from tests.openapi_schema import assert_matches_schema

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
            "required": ["city", "days"],
        },
    },
}


def test_chat_non_streaming(client: openai.OpenAI, harness: GatewayHarness) -> None:
    completion = client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}],
        temperature=0,
        seed=7,
    )
    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-test"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    sent = harness.native.requests_to("/v1/chat/completions")[-1]
    assert sent.json["model"] == "gpt-4o-mini"
    assert sent.json["temperature"] == 0
    assert sent.json["seed"] == 7
    assert sent.json["messages"][0] == {"role": "system", "content": "be brief"}


def test_chat_raw_body_matches_openai_schema(harness: GatewayHarness) -> None:
    response = httpx.post(
        f"{harness.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {harness.api_key}"},
        json={"model": "gpt-test", "messages": [{"role": "user", "content": "schema please"}]},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-request-id"]
    assert_matches_schema(response.json(), "CreateChatCompletionResponse")
    assert response.json()["provider"] == "fake"


def test_chat_streaming_without_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "stream this please"}], stream=True
    )
    chunks = list(stream)
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: stream this please"
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_chat_streaming_with_include_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "count my tokens"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    final = chunks[-1]
    assert final.choices == []
    assert final.usage is not None and final.usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_stream_wire_format_is_openai_sse(harness: GatewayHarness) -> None:
    with httpx.stream(
        "POST",
        f"{harness.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {harness.api_key}"},
        json={
            "model": "gpt-test",
            "messages": [{"role": "user", "content": "wire check"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    for event in events[:-2]:
        assert event.startswith("data: ")
        chunk = json.loads(event[len("data: ") :])
        assert_matches_schema(chunk, "CreateChatCompletionStreamResponse")
        assert "usage" in chunk


def test_tool_calls_non_streaming(client: openai.OpenAI, harness: GatewayHarness) -> None:
    completion = client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        parallel_tool_calls=False,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert set(arguments) == {"city", "days"}
    sent = harness.native.requests_to("/v1/chat/completions")[-1].json
    assert sent["tools"] == [WEATHER_TOOL]
    assert sent["parallel_tool_calls"] is False
    assert sent["tool_choice"] == "auto"


def test_tool_call_round_trip_and_streamed_argument_deltas(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
    )
    deltas = [c.choices[0].delta for c in stream if c.choices]
    tool_deltas = [d.tool_calls[0] for d in deltas if d.tool_calls]
    assert len(tool_deltas) > 2, "arguments should arrive in several deltas"
    assert tool_deltas[0].id and tool_deltas[0].function.name == "get_weather"
    assert all(d.index == 0 for d in tool_deltas)
    arguments = "".join(d.function.arguments or "" for d in tool_deltas)
    assert set(json.loads(arguments)) == {"city", "days"}

    follow_up = client.chat.completions.create(
        model="gpt-test",
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": tool_deltas[0].id,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": tool_deltas[0].id, "content": "sunny, 21C"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert follow_up.choices[0].message.content == "tool said: sunny, 21C"


def test_json_schema_structured_output(client: openai.OpenAI, harness: GatewayHarness) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "age", "tags"],
        "additionalProperties": False,
    }
    completion = client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "a person"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": schema, "strict": True},
        },
    )
    person = json.loads(completion.choices[0].message.content or "")
    assert (
        isinstance(person["name"], str)
        and isinstance(person["age"], int)
        and isinstance(person["tags"], list)
    )
    sent = harness.native.requests_to("/v1/chat/completions")[-1].json
    assert sent["response_format"]["json_schema"]["schema"] == schema


def test_image_attachment(client: openai.OpenAI, harness: GatewayHarness) -> None:
    image = (
        "data:image/png;base64,"
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    )
    completion = client.chat.completions.create(
        model="gpt-test",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": image, "detail": "low"}},
                ],
            }
        ],
    )
    assert "1 image" in (completion.choices[0].message.content or "")
    sent = harness.native.requests_to("/v1/chat/completions")[-1].json
    assert sent["messages"][0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": image, "detail": "low"},
    }


def test_unknown_fields_reach_upstream_through_extra_body(
    client: openai.OpenAI, harness: GatewayHarness
) -> None:
    client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"top_k": 5, "repetition_penalty": 1.1, "provider": {"order": ["fake"]}},
    )
    sent = harness.native.requests_to("/v1/chat/completions")[-1].json
    assert sent["top_k"] == 5 and sent["repetition_penalty"] == 1.1
    assert "provider" not in sent and "models" not in sent
