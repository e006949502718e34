"""AnthropicProvider's I/O against the fake Anthropic upstream: headers, streams, faults, timeouts."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.config import AnthropicProviderConfig
from server.errors import InvalidRequest, RateLimited, RequestTimeout, UpstreamError
from server.providers.anthropic import AnthropicProvider
from server.providers.base import RequestContext
from siraya.router.codec.chat_request import decode_chat_request
from siraya.router.v1 import chat_pb2, embeddings_pb2, images_pb2, videos_pb2
from tests.fakes.anthropic_upstream import (
    THINKING_TEXT,
    AnthropicFault,
    FakeAnthropicUpstream,
    ScriptedMessage,
    sign_thinking,
)

KEY = "sk-ant-api03-provider-test-key-0123456789"
MODEL = "claude-sonnet-4-5"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


@pytest.fixture
async def upstream() -> AsyncIterator[FakeAnthropicUpstream]:
    async with FakeAnthropicUpstream(api_key=KEY) as fake:
        yield fake


def make_provider(base_url: str, **overrides: Any) -> AnthropicProvider:
    settings: dict[str, Any] = {
        "name": "anthropic",
        "type": "anthropic",
        "base_url": base_url,
        "api_key": KEY,
    }
    settings.update(overrides)
    return AnthropicProvider(AnthropicProviderConfig(**settings))


@pytest.fixture
async def provider(upstream: FakeAnthropicUpstream) -> AsyncIterator[AnthropicProvider]:
    adapter = make_provider(upstream.base_url)
    yield adapter
    await adapter.close()


def params(**body: Any) -> chat_pb2.ChatCompletionParams:
    body.setdefault("model", "claude")
    body.setdefault("messages", [{"role": "user", "content": "Hi there"}])
    return decode_chat_request(body)


def ctx(deadline: float | None = None) -> RequestContext:
    return RequestContext(
        request_id="req-test", deadline=deadline, forward_headers={"x-request-id": "req-test"}
    )


async def collect(
    provider: AnthropicProvider, request: chat_pb2.ChatCompletionParams
) -> list[chat_pb2.ChatCompletionChunk]:
    return [chunk async for chunk in provider.stream_chat(request, MODEL, ctx())]


async def test_chat_sends_anthropic_headers_to_v1_messages(
    upstream: FakeAnthropicUpstream, provider: AnthropicProvider
) -> None:
    completion = await provider.chat(params(), MODEL, ctx())
    assert completion.choices[0].message.content == f"Hello from {MODEL}! You said: Hi there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens > 0
    record = upstream.requests[-1]
    assert record.path == "/v1/messages"
    assert record.headers["x-api-key"] == KEY
    assert record.headers["anthropic-version"] == "2023-06-01"
    assert record.headers["content-type"] == "application/json"
    assert record.headers["x-request-id"] == "req-test"
    assert "authorization" not in record.headers
    assert record.json["model"] == MODEL and record.json["max_tokens"] == 4096


async def test_base_url_with_v1_is_not_doubled(upstream: FakeAnthropicUpstream) -> None:
    adapter = make_provider(upstream.base_url + "/v1/")
    try:
        await adapter.chat(params(), MODEL, ctx())
    finally:
        await adapter.close()
    assert upstream.requests[-1].path == "/v1/messages"


async def test_config_headers_override_the_version_and_add_betas() -> None:
    async with FakeAnthropicUpstream(api_key=KEY, version="2099-01-01") as fake:
        adapter = make_provider(
            fake.base_url,
            headers={"Anthropic-Version": "2099-01-01", "anthropic-beta": "context-1m-2025-08-07"},
        )
        try:
            await adapter.chat(params(), MODEL, ctx())
        finally:
            await adapter.close()
        assert fake.requests[-1].headers["anthropic-version"] == "2099-01-01"
        assert fake.requests[-1].headers["anthropic-beta"] == "context-1m-2025-08-07"


async def test_image_and_thinking_round_trip(
    upstream: FakeAnthropicUpstream, provider: AnthropicProvider
) -> None:
    image = f"data:image/png;base64,{base64.b64encode(PNG).decode()}"
    content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": image}}]
    request = params(messages=[{"role": "user", "content": content}], reasoning_effort="low")
    message = (await provider.chat(request, MODEL, ctx())).choices[0].message
    assert message.content.endswith("[1 image(s)]")
    assert message.reasoning == THINKING_TEXT
    assert upstream.last_json["thinking"] == {"type": "enabled", "budget_tokens": 1024}


async def test_stream_with_thinking_text_and_two_tools(
    upstream: FakeAnthropicUpstream, provider: AnthropicProvider
) -> None:
    upstream.script(
        ScriptedMessage(
            [
                {"type": "thinking", "thinking": "Two lookups needed.", "signature": TWO_LOOKUPS},
                {"type": "text", "text": "Looking both up."},
                {"type": "tool_use", "id": "toolu_A", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_B", "name": "get_time", "input": {"zone": "CET"}},
            ],
            stop_reason="tool_use",
            usage={"cache_read_input_tokens": 40},
        )
    )
    chunks = await collect(provider, params(stream_options={"include_usage": True}))
    assert upstream.last_json["stream"] is True
    deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
    assert deltas[0].role == "assistant"
    assert "".join(d.reasoning for d in deltas) == "Two lookups needed."
    assert "".join(d.content for d in deltas) == "Looking both up."
    arguments: dict[int, str] = {}
    ids: dict[int, str] = {}
    for delta in deltas:
        for call in delta.tool_calls:
            arguments[call.index] = arguments.get(call.index, "") + call.function.arguments
            if call.HasField("id"):
                ids[call.index] = call.id
    # The thinking signature rides in the first call's id, so the loop can send it back.
    assert ids == {0: f"toolu_A__ts_{TWO_LOOKUPS}", 1: "toolu_B"}
    assert arguments == {0: '{"city":"Paris"}', 1: '{"zone":"CET"}'}
    assert chunks[-2].choices[0].finish_reason == "tool_calls"
    assert not chunks[-1].choices
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 40


TWO_LOOKUPS = sign_thinking("Two lookups needed.")


@pytest.mark.parametrize("stream", [False, True])
async def test_a_tool_loop_keeps_thinking_on(
    upstream: FakeAnthropicUpstream, provider: AnthropicProvider, stream: bool
) -> None:
    """Call with thinking, then send the tool results back: the signed thinking block returns."""
    upstream.script(
        ScriptedMessage(
            [
                {"type": "thinking", "thinking": "Two lookups needed.", "signature": TWO_LOOKUPS},
                {"type": "tool_use", "id": "toolu_A", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_B", "name": "get_time", "input": {"zone": "CET"}},
            ],
            stop_reason="tool_use",
        )
    )
    ask = [{"role": "user", "content": "Weather and time in Paris?"}]
    tools = [
        {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
        for name in ("get_weather", "get_time")
    ]
    first = params(messages=ask, tools=tools, reasoning_effort="low", stream=stream)
    if stream:
        chunks = await collect(provider, first)
        deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
        reasoning = "".join(d.reasoning for d in deltas)
        calls: dict[int, dict[str, str]] = {}
        for delta in deltas:
            for call in delta.tool_calls:
                entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += call.id
                entry["name"] += call.function.name
                entry["arguments"] += call.function.arguments
        tool_calls = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in calls.values()
        ]
    else:
        message = (await provider.chat(first, MODEL, ctx())).choices[0].message
        reasoning = message.reasoning
        tool_calls = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.function.name, "arguments": c.function.arguments},
            }
            for c in message.tool_calls
        ]
    assert reasoning == "Two lookups needed."
    history = [
        *ask,
        {"role": "assistant", "content": None, "reasoning": reasoning, "tool_calls": tool_calls},
        {"role": "tool", "tool_call_id": tool_calls[0]["id"], "content": "18C"},
        {"role": "tool", "tool_call_id": tool_calls[1]["id"], "content": "14:00"},
    ]
    second = await provider.chat(params(messages=history, tools=tools, reasoning_effort="low"), MODEL, ctx())
    # The fake checks the signature against the text and refuses a tool turn without its thinking.
    assert second.choices[0].message.content == "Tool results: 18C; 14:00"
    sent = upstream.last_json
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert sent["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "Two lookups needed.",
        "signature": TWO_LOOKUPS,
    }
    assert [b["id"] for b in sent["messages"][1]["content"][1:]] == ["toolu_A", "toolu_B"]
    assert [b["tool_use_id"] for b in sent["messages"][2]["content"]] == ["toolu_A", "toolu_B"]


@pytest.mark.parametrize(
    ("fault", "cls", "retry_after"),
    [
        (
            AnthropicFault(status=429, error_type="rate_limit_error", headers={"retry-after": "9"}),
            RateLimited,
            9.0,
        ),
        (
            AnthropicFault(status=529, error_type="overloaded_error", message="Overloaded"),
            UpstreamError,
            None,
        ),
        (AnthropicFault(status=500, error_type="api_error"), UpstreamError, None),
        (
            AnthropicFault(status=404, error_type="not_found_error", message="model: claude-9"),
            UpstreamError,
            None,
        ),
        (AnthropicFault(status=413, error_type="request_too_large"), InvalidRequest, None),
        (AnthropicFault(status=502, garbage=True), UpstreamError, None),
        (AnthropicFault(garbage=True), UpstreamError, None),
    ],
)
async def test_http_faults_are_classified(
    upstream: FakeAnthropicUpstream,
    provider: AnthropicProvider,
    fault: AnthropicFault,
    cls: type[Exception],
    retry_after: float | None,
) -> None:
    upstream.inject(fault)
    with pytest.raises(cls) as caught:
        await provider.chat(params(), MODEL, ctx())
    assert getattr(caught.value, "retry_after", None) == retry_after


async def test_a_wrong_key_is_a_502_that_never_shows_the_key(upstream: FakeAnthropicUpstream) -> None:
    adapter = make_provider(upstream.base_url, api_key="sk-ant-wrong-key-987654321")
    try:
        with pytest.raises(UpstreamError) as caught:
            await adapter.chat(params(), MODEL, ctx())
    finally:
        await adapter.close()
    assert "sk-ant-wrong" not in str(caught.value.envelope())


async def test_upstream_validation_errors_reach_the_client_redacted(
    upstream: FakeAnthropicUpstream, provider: AnthropicProvider
) -> None:
    upstream.inject(
        AnthropicFault(status=400, error_type="invalid_request_error", message=f"bad key {KEY} in body")
    )
    with pytest.raises(InvalidRequest) as caught:
        await provider.chat(params(), MODEL, ctx())
    assert caught.value.message == "bad key *** in body"


@pytest.mark.parametrize("after", [0, 4])
async def test_error_event_mid_stream(
    upstream: FakeAnthropicUpstream, provider: AnthropicProvider, after: int
) -> None:
    upstream.inject(
        AnthropicFault(error_type="overloaded_error", message="Overloaded", error_after_events=after)
    )
    received: list[chat_pb2.ChatCompletionChunk] = []
    with pytest.raises(UpstreamError, match="overloaded"):
        async for chunk in provider.stream_chat(params(), MODEL, ctx()):
            received.append(chunk)
    # The first event is message_start, so an error in its place comes before any chunk.
    assert (len(received) == 0) == (after == 0)


async def test_a_stream_cut_before_message_stop_fails(
    upstream: FakeAnthropicUpstream, provider: AnthropicProvider
) -> None:
    upstream.inject(AnthropicFault(cut_after_events=5))
    with pytest.raises(UpstreamError, match="before message_stop"):
        await collect(provider, params())


async def test_garbage_in_a_stream_fails(
    upstream: FakeAnthropicUpstream, provider: AnthropicProvider
) -> None:
    upstream.inject(AnthropicFault(garbage=True))
    with pytest.raises(UpstreamError, match="malformed"):
        await collect(provider, params())


async def test_a_silent_upstream_times_out(upstream: FakeAnthropicUpstream) -> None:
    adapter = make_provider(upstream.base_url, read_timeout=0.2)
    upstream.inject(AnthropicFault(hang=2))
    try:
        with pytest.raises(RequestTimeout):
            await adapter.chat(params(), MODEL, ctx())
    finally:
        await adapter.close()


async def test_a_passed_deadline_times_out(provider: AnthropicProvider) -> None:
    with pytest.raises(RequestTimeout):
        await provider.chat(params(), MODEL, ctx(deadline=time.monotonic() - 1))


async def test_an_unreachable_upstream_is_a_502() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = make_provider(f"http://127.0.0.1:{port}", connect_timeout=2)
    try:
        with pytest.raises(UpstreamError, match="refused the connection"):
            await adapter.chat(params(), MODEL, ctx())
    finally:
        await adapter.close()


async def test_unsupported_parameters_fail_before_any_request(
    upstream: FakeAnthropicUpstream, provider: AnthropicProvider
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await provider.chat(params(n=3), MODEL, ctx())
    assert caught.value.param == "n"
    with pytest.raises(InvalidRequest):
        await collect(provider, params(logprobs=True))
    assert upstream.requests == []


async def test_embeddings_images_and_videos_are_unsupported(provider: AnthropicProvider) -> None:
    calls = [
        provider.embed(embeddings_pb2.EmbeddingParams(), MODEL, ctx()),
        provider.generate_images(images_pb2.ImageParams(), MODEL, ctx()),
        provider.create_video(videos_pb2.VideoParams(), MODEL, ctx()),
        provider.get_video("v1", ctx()),
        provider.download_video("v1", "video", ctx()),
    ]
    messages = []
    for call in calls:
        with pytest.raises(InvalidRequest) as caught:
            await call
        assert (caught.value.param, caught.value.code) == ("model", "unsupported_model_capability")
        messages.append(caught.value.message)
    assert "does not support embeddings" in messages[0]
