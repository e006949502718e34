"""A claude-* model end to end: the official OpenAI SDK -> the gateway -> the fake Anthropic upstream."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.e2e.anthropic_harness import ANTHROPIC_KEY, UPSTREAM_MODEL, AnthropicGatewayHarness
from tests.e2e.conformance import Surfaces
from tests.e2e.openai_door.test_schema_key_order import SCHEMA as ORDERED_SCHEMA
from tests.e2e.openai_door.test_schema_key_order import SCHEMA_BYTES as ORDERED_SCHEMA_BYTES
from tests.fakes.anthropic_upstream import SIGNATURE, THINKING_TEXT, AnthropicFault

MODEL = "claude-sonnet"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "celsius": {"type": "integer"}},
    "required": ["city", "celsius"],
    "additionalProperties": False,
}
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather for a city", "parameters": WEATHER_SCHEMA},
}


@pytest.fixture(scope="module", params=["in_process", "grpc_hop"])
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AnthropicGatewayHarness]:
    tmp: Path = tmp_path_factory.mktemp(f"anthropic-{request.param}")
    running = AnthropicGatewayHarness(tmp, in_process=request.param == "in_process")
    running.start()
    yield running
    running.stop()


@pytest.fixture
def claude(gateway: AnthropicGatewayHarness) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=gateway.api_key, max_retries=0, timeout=20)


def sent(gateway: AnthropicGatewayHarness) -> dict[str, Any]:
    body = gateway.upstream.last_json
    assert isinstance(body, dict)
    return body


def test_chat(claude: openai.OpenAI, gateway: AnthropicGatewayHarness) -> None:
    completion = claude.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}],
        temperature=0.2,
        max_tokens=64,
    )
    choice = completion.choices[0]
    assert choice.message.content == f"Hello from {UPSTREAM_MODEL}! You said: hello there"
    assert choice.finish_reason == "stop"
    assert completion.model == MODEL
    assert completion.usage is not None and completion.usage.total_tokens > 0
    body = sent(gateway)
    assert body["system"] == "Be brief."
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}]
    assert (body["model"], body["max_tokens"], body["temperature"]) == (UPSTREAM_MODEL, 64, 0.2)
    assert gateway.upstream.requests[-1].headers["x-api-key"] == ANTHROPIC_KEY


def test_streaming_with_usage(claude: openai.OpenAI) -> None:
    chunks = list(
        claude.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "stream this"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"Hello from {UPSTREAM_MODEL}! You said: stream this"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_reasoning_effort_returns_reasoning(claude: openai.OpenAI, gateway: AnthropicGatewayHarness) -> None:
    completion = claude.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "think first"}], reasoning_effort="medium"
    )
    message = completion.choices[0].message
    assert getattr(message, "reasoning", None) == THINKING_TEXT
    assert sent(gateway)["thinking"] == {"type": "enabled", "budget_tokens": 4096}


def test_tool_call_round_trip(claude: openai.OpenAI, gateway: AnthropicGatewayHarness) -> None:
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = claude.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER_TOOL], tool_choice="required"
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "text", "celsius": 1}
    assert sent(gateway)["tool_choice"] == {"type": "any"}
    assert sent(gateway)["tools"][0]["input_schema"] == WEATHER_SCHEMA

    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"})
    second = claude.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "Tool results: 18C and sunny"
    assert second.choices[0].finish_reason == "stop"
    turns = sent(gateway)["messages"]
    assert [turn["role"] for turn in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"][-1] == {
        "type": "tool_use",
        "id": call.id,
        "name": "get_weather",
        "input": {"city": "text", "celsius": 1},
    }
    assert turns[2]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": call.id,
            "content": [{"type": "text", "text": "18C and sunny"}],
        }
    ]


def test_tool_loop_with_thinking_keeps_thinking_on(
    claude: openai.OpenAI, gateway: AnthropicGatewayHarness
) -> None:
    """Anthropic wants the signed thinking block back with the tool results: the SDK's echo carries it."""
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = claude.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER_TOOL], reasoning_effort="low"
    )
    message = first.choices[0].message
    assert getattr(message, "reasoning", None) == THINKING_TEXT
    assert message.tool_calls is not None
    call = message.tool_calls[0]
    messages.append(message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"})
    second = claude.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER_TOOL], reasoning_effort="low"
    )
    assert second.choices[0].message.content == "Tool results: 18C and sunny"
    assert getattr(second.choices[0].message, "reasoning", None) == THINKING_TEXT
    body = sent(gateway)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert body["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": THINKING_TEXT,
        "signature": SIGNATURE,
    }
    assert body["messages"][1]["content"][1]["id"] == "toolu_fake01"
    assert body["messages"][2]["content"][0]["tool_use_id"] == "toolu_fake01"


def test_responses_tool_loop_with_thinking_keeps_thinking_on(
    claude: openai.OpenAI, gateway: AnthropicGatewayHarness
) -> None:
    tool: Any = {"type": "function", "name": "get_weather", "parameters": WEATHER_SCHEMA}
    ask: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = claude.responses.create(model=MODEL, input=ask, tools=[tool], reasoning={"effort": "low"})
    assert [item.type for item in first.output] == ["reasoning", "function_call"]
    call: Any = first.output[1]
    history = [*ask, *(item.model_dump(exclude_none=True) for item in first.output)]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "18C and sunny"})
    second = claude.responses.create(model=MODEL, input=history, tools=[tool], reasoning={"effort": "low"})
    assert second.output_text == "Tool results: 18C and sunny"
    body = sent(gateway)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert body["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": THINKING_TEXT,
        "signature": SIGNATURE,
    }


def test_streamed_tool_call_arguments_assemble(claude: openai.OpenAI) -> None:
    stream = claude.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        for delta in chunk.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += delta.id or ""
            if delta.function is not None:
                entry["name"] += delta.function.name or ""
                entry["arguments"] += delta.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather" and calls[0]["id"].startswith("toolu_")
    assert json.loads(calls[0]["arguments"]) == {"city": "text", "celsius": 1}


def test_images(claude: openai.OpenAI, gateway: AnthropicGatewayHarness) -> None:
    png = base64.b64encode(PNG).decode()
    completion = claude.chat.completions.create(
        model=MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare these"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"},
                    },
                ],
            }
        ],
    )
    assert completion.choices[0].message.content is not None
    assert completion.choices[0].message.content.endswith("[2 image(s)]")
    blocks = sent(gateway)["messages"][0]["content"]
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": png},
    }
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}


def test_structured_output(claude: openai.OpenAI, gateway: AnthropicGatewayHarness) -> None:
    completion = claude.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Paris as JSON"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "weather", "schema": WEATHER_SCHEMA, "strict": True},
        },
    )
    content = completion.choices[0].message.content
    assert content is not None
    assert json.loads(content) == {"city": "text", "celsius": 1}
    assert completion.choices[0].finish_reason == "stop"
    assert sent(gateway)["output_config"] == {"format": {"type": "json_schema", "schema": WEATHER_SCHEMA}}


def test_responses_streaming_event_order(claude: openai.OpenAI) -> None:
    events = list(claude.responses.create(model=MODEL, input="stream a response", stream=True))
    types: list[str] = [event.type for event in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    order = [
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    positions = [types.index(kind) for kind in order]
    assert positions == sorted(positions), types
    text = "".join(getattr(e, "delta", "") for e in events if e.type == "response.output_text.delta")
    assert text == f"Hello from {UPSTREAM_MODEL}! You said: stream a response"
    completed = events[-1].response  # type: ignore[union-attr]
    assert completed.status == "completed"
    assert completed.output_text == text


def test_responses_hitting_max_output_tokens_are_incomplete(claude: openai.OpenAI) -> None:
    # The fake counts words as tokens and cuts at max_tokens, with stop_reason "max_tokens".
    unary = claude.responses.create(model=MODEL, input="one two three four", max_output_tokens=3)
    assert unary.status == "incomplete" and unary.incomplete_details is not None
    assert unary.incomplete_details.reason == "max_output_tokens"
    assert unary.output_text == "Hello from claude-sonnet-4-5-20250929!"
    events = list(
        claude.responses.create(model=MODEL, input="one two three four", max_output_tokens=3, stream=True)
    )
    final: Any = events[-1]
    assert final.type == "response.incomplete"
    assert final.response.incomplete_details.reason == "max_output_tokens"


def test_responses_stream_with_an_error_event_ends_with_response_failed(
    claude: openai.OpenAI, gateway: AnthropicGatewayHarness
) -> None:
    gateway.upstream.inject(
        AnthropicFault(error_type="overloaded_error", message=f"busy {ANTHROPIC_KEY}", error_after_events=4)
    )
    events = list(claude.responses.create(model=MODEL, input="hi", stream=True))
    assert events[0].type == "response.created"
    assert [event.type for event in events[-2:]] == ["response.failed", "error"]
    failed: Any = events[-2]
    assert failed.response.status == "failed" and failed.response.error is not None
    assert all(ANTHROPIC_KEY not in event.model_dump_json() for event in events)


def test_responses_unary(claude: openai.OpenAI) -> None:
    response = claude.responses.create(model=MODEL, input="hi", instructions="Be brief.")
    assert response.output_text == f"Hello from {UPSTREAM_MODEL}! You said: hi"


# --- errors -----------------------------------------------------------------------------------


def test_rate_limit_keeps_retry_after(claude: openai.OpenAI, gateway: AnthropicGatewayHarness) -> None:
    gateway.upstream.inject(
        AnthropicFault(
            status=429, error_type="rate_limit_error", message="slow down", headers={"retry-after": "7"}
        )
    )
    with pytest.raises(openai.RateLimitError) as caught:
        claude.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.response.headers.get("retry-after") == "7"


def test_overloaded_is_a_502(claude: openai.OpenAI, gateway: AnthropicGatewayHarness) -> None:
    gateway.upstream.inject(AnthropicFault(status=529, error_type="overloaded_error", message="Overloaded"))
    with pytest.raises(openai.APIStatusError) as caught:
        claude.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 502
    assert caught.value.type == "upstream_error"


@pytest.mark.parametrize(
    ("status", "error_type", "http_status", "kind", "code"),
    [
        (400, "invalid_request_error", 400, "invalid_request_error", "invalid_request"),
        (401, "authentication_error", 502, "upstream_error", "provider_error"),
        (402, "billing_error", 502, "upstream_error", "provider_error"),
        (403, "permission_error", 502, "upstream_error", "provider_error"),
        (404, "not_found_error", 502, "upstream_error", "provider_error"),
        (413, "request_too_large", 400, "invalid_request_error", "request_too_large"),
        (429, "rate_limit_error", 429, "rate_limit_error", "rate_limit_exceeded"),
        (500, "api_error", 502, "upstream_error", "provider_error"),
        (504, "timeout_error", 408, "timeout_error", "request_timeout"),
        (529, "overloaded_error", 502, "upstream_error", "provider_error"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_every_anthropic_error_type_maps_to_the_table(
    claude: openai.OpenAI,
    gateway: AnthropicGatewayHarness,
    status: int,
    error_type: str,
    http_status: int,
    kind: str,
    code: str,
    stream: bool,
) -> None:
    gateway.upstream.inject(
        AnthropicFault(status=status, error_type=error_type, message=f"failed for key {ANTHROPIC_KEY}")
    )
    with pytest.raises(openai.APIStatusError) as caught:
        reply = claude.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=stream
        )
        if stream:
            list(reply)  # type: ignore[arg-type]
    assert caught.value.status_code == http_status
    error: Any = caught.value.body
    assert (error["type"], error["code"]) == (kind, code)
    assert ANTHROPIC_KEY not in caught.value.response.text


def test_upstream_auth_failure_never_shows_the_key(
    claude: openai.OpenAI, gateway: AnthropicGatewayHarness
) -> None:
    gateway.upstream.inject(
        AnthropicFault(
            status=401, error_type="authentication_error", message=f"invalid x-api-key {ANTHROPIC_KEY}"
        )
    )
    with pytest.raises(openai.APIStatusError) as caught:
        claude.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 502
    assert ANTHROPIC_KEY not in caught.value.response.text


def test_invalid_request_passes_through_redacted(
    claude: openai.OpenAI, gateway: AnthropicGatewayHarness
) -> None:
    gateway.upstream.inject(
        AnthropicFault(
            status=400, error_type="invalid_request_error", message=f"prompt is too long ({ANTHROPIC_KEY})"
        )
    )
    with pytest.raises(openai.BadRequestError) as caught:
        claude.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert "prompt is too long" in caught.value.message
    assert ANTHROPIC_KEY not in caught.value.response.text


def test_unsupported_parameter_is_a_400(claude: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        claude.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], n=2)
    assert caught.value.param == "n"
    assert caught.value.code == "unsupported_parameter"


def test_error_event_mid_stream_reaches_the_sdk(
    claude: openai.OpenAI, gateway: AnthropicGatewayHarness
) -> None:
    gateway.upstream.inject(
        AnthropicFault(error_type="overloaded_error", message="Overloaded", error_after_events=4)
    )
    stream = claude.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk)
    assert received and received[0].choices[0].delta.role == "assistant"


def test_error_event_before_any_chunk_gets_a_real_status(
    claude: openai.OpenAI, gateway: AnthropicGatewayHarness
) -> None:
    gateway.upstream.inject(
        AnthropicFault(error_type="overloaded_error", message="Overloaded", error_after_events=0)
    )
    with pytest.raises(openai.APIStatusError) as caught:
        list(
            claude.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
    assert caught.value.status_code == 502


def test_embeddings_are_not_an_anthropic_capability(claude: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        claude.embeddings.create(model="claude-embed", input="hello")
    assert caught.value.code == "unsupported_model_capability"
    assert "does not support embeddings" in caught.value.message


def test_schemas_reach_anthropic_in_the_client_order(
    claude: openai.OpenAI, gateway: AnthropicGatewayHarness
) -> None:
    claude.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "order please"}],
        tools=[{"type": "function", "function": {"name": "pick", "parameters": ORDERED_SCHEMA}}],
    )
    assert gateway.upstream.requests[-1].body.count(ORDERED_SCHEMA_BYTES) == 1
    claude.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "order please"}],
        response_format={"type": "json_schema", "json_schema": {"name": "out", "schema": ORDERED_SCHEMA}},
    )
    assert gateway.upstream.requests[-1].body.count(ORDERED_SCHEMA_BYTES) == 1


def test_every_surface_matches_openai_schemas(gateway: AnthropicGatewayHarness) -> None:
    claude = Surfaces(gateway.base_url, gateway.api_key, MODEL)
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    claude.chat(messages=ask)
    called = claude.chat(messages=ask, tools=[WEATHER_TOOL], tool_choice="required")
    assert called["choices"][0]["finish_reason"] == "tool_calls"
    claude.chat(messages=ask, reasoning_effort="medium")
    claude.chat_stream(messages=ask, stream_options={"include_usage": True}, reasoning_effort="medium")
    claude.chat_stream(messages=ask, tools=[WEATHER_TOOL], tool_choice="required")
    tool = {"type": "function", "name": "get_weather", "parameters": WEATHER_SCHEMA}
    claude.response(input="hi", instructions="Be brief.", reasoning={"effort": "medium"})
    function_call = claude.response(input="Paris?", tools=[tool], tool_choice="required")
    assert [item["type"] for item in function_call["output"]] == ["function_call"]
    events = claude.response_stream(input="hi", reasoning={"effort": "medium"})
    assert events[-1]["type"] == "response.completed"
    claude.response_stream(input="Paris?", tools=[tool], tool_choice="required")
