"""Prompt caching end to end, on both front doors (#15 item 5).

- `cache_control` written on an OpenAI chat request (request, messages, parts, tools: OpenRouter and
  LiteLLM style) reaches the fake Anthropic upstream as Anthropic's own `cache_control`, byte for
  byte, and never reaches an OpenAI-compatible upstream; on the Messages front door it reaches
  Anthropic whether the request is relayed or translated (a gRPC caller, a fallback).
- Cache reads and writes come back in both usage shapes and are billed at the model's cache prices:
  in the reply's cost, the ledger (GET /v1/generation) and the key's credit use.
- `/v1/models` shows the cache prices.
- `prompt_cache_affinity` keeps a shared prompt prefix on one deployment of three, and spreads
  distinct prefixes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import openai
import orjson
import pytest

from siraya.router.v1 import messages_pb2, messages_pb2_grpc
from tests.e2e.caching_harness import CLAUDE_PRICES, GEMINI_PRICES, CachingGatewayHarness
from tests.fakes.anthropic_upstream import ScriptedMessage
from tests.fakes.gemini_upstream import GeminiReply

LONG_CONTEXT = "The handbook says: " + "always cache the long part. " * 40
EPHEMERAL = {"type": "ephemeral"}
ONE_HOUR = {"type": "ephemeral", "ttl": "1h"}
WEATHER: dict[str, Any] = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
CACHE_USAGE = {
    "input_tokens": 1000,
    "cache_read_input_tokens": 4000,
    "cache_creation_input_tokens": 2000,
    "output_tokens": 500,
}


def claude_cost(uncached: int, read: int, written: int, output: int) -> float:
    """What the harness's Claude prices make of a usage, in USD."""
    p = CLAUDE_PRICES
    return (
        uncached * p["input"] + read * p["cache_read"] + written * p["cache_write"] + output * p["output"]
    ) / 1_000_000


@pytest.fixture(scope="module", params=["in_process", "grpc_hop"])
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CachingGatewayHarness]:
    tmp: Path = tmp_path_factory.mktemp(f"caching-{request.param}")
    running = CachingGatewayHarness(tmp, in_process=request.param == "in_process")
    running.start()
    yield running
    running.stop()


@pytest.fixture
def chat(gateway: CachingGatewayHarness) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=gateway.api_key, max_retries=0, timeout=20)


def cached_conversation() -> list[Any]:
    """A chat conversation with a breakpoint on a system part, a user part, a whole assistant message
    (LiteLLM's message-level form) and a tool message."""
    return [
        {
            "role": "system",
            "content": [
                {"type": "text", "text": "You are terse."},
                {"type": "text", "text": LONG_CONTEXT, "cache_control": ONE_HOUR},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "text", "text": "Weather in Paris?", "cache_control": EPHEMERAL}],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
            "cache_control": EPHEMERAL,
        },
        {"role": "tool", "tool_call_id": "toolu_01", "content": "18C and sunny", "cache_control": EPHEMERAL},
        {"role": "user", "content": "Thanks, and tomorrow?"},
    ]


# --- cache_control reaches Anthropic ----------------------------------------------------------


def test_chat_cache_control_reaches_anthropic_byte_for_byte(
    chat: openai.OpenAI, gateway: CachingGatewayHarness
) -> None:
    chat.chat.completions.create(
        model="claude-cached",
        messages=cached_conversation(),
        tools=[{"type": "function", "function": WEATHER, "cache_control": EPHEMERAL}],  # type: ignore[list-item]
        tool_choice="none",
        max_tokens=64,
        extra_body={"cache_control": EPHEMERAL},
    )
    sent = gateway.anthropic.requests[-1]
    assert sent.json["system"] == [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": LONG_CONTEXT, "cache_control": ONE_HOUR},
    ]
    messages = sent.json["messages"]
    assert messages[0]["content"] == [
        {"type": "text", "text": "Weather in Paris?", "cache_control": EPHEMERAL}
    ]
    assert messages[1]["content"][-1] == {
        "type": "tool_use",
        "id": "toolu_01",
        "name": "get_weather",
        "input": {},
        "cache_control": EPHEMERAL,
    }
    assert messages[2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_01",
        "content": [{"type": "text", "text": "18C and sunny"}],
        "cache_control": EPHEMERAL,
    }
    assert sent.json["tools"][0]["cache_control"] == EPHEMERAL
    assert sent.json["cache_control"] == EPHEMERAL
    # The objects are Anthropic's own, key for key and byte for byte.
    assert sent.body.count(b'"cache_control":{"type":"ephemeral","ttl":"1h"}') == 1
    assert sent.body.count(b'"cache_control":{"type":"ephemeral"}') == 5


def test_an_openai_compatible_upstream_never_sees_cache_control(
    chat: openai.OpenAI, gateway: CachingGatewayHarness
) -> None:
    """Strict OpenAI-compatible servers answer 400 to it; dropping it changes only the cost."""
    reply = chat.chat.completions.create(
        model="gpt-test",
        messages=cached_conversation(),
        tools=[{"type": "function", "function": WEATHER, "cache_control": EPHEMERAL}],  # type: ignore[list-item]
        extra_body={"cache_control": EPHEMERAL},
    )
    assert reply.choices[0].message is not None
    sent = gateway.openai.requests_to("/v1/chat/completions")[-1]
    assert b"cache_control" not in sent.body
    assert sent.json["messages"][1]["content"] == [{"type": "text", "text": "Weather in Paris?"}]


def test_a_malformed_cache_control_is_a_400_naming_it(chat: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        chat.chat.completions.create(
            model="claude-cached",
            messages=[{"role": "user", "content": [{"type": "text", "text": "x", "cache_control": "yes"}]}],  # type: ignore[typeddict-item]
        )
    assert caught.value.param == "messages[0].content[0].cache_control"  # type: ignore[attr-defined]


MESSAGES_BODY: dict[str, Any] = {
    "model": "claude-cached",
    "max_tokens": 64,
    "system": [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": LONG_CONTEXT, "cache_control": ONE_HOUR},
    ],
    "tools": [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": WEATHER["parameters"],
            "cache_control": EPHEMERAL,
        }
    ],
    "tool_choice": {"type": "none"},
    "messages": [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Weather in Paris?", "cache_control": EPHEMERAL}],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01",
                    "content": "18C",
                    "cache_control": EPHEMERAL,
                },
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ],
    "cache_control": EPHEMERAL,
}


def test_messages_cache_control_is_relayed_to_anthropic_byte_for_byte(gateway: CachingGatewayHarness) -> None:
    raw = orjson.dumps(MESSAGES_BODY)
    response = httpx.post(
        gateway.root_url + "/v1/messages",
        content=raw,
        headers={"x-api-key": gateway.api_key, "content-type": "application/json"},
        timeout=20,
    )
    assert response.status_code == 200, response.text
    assert gateway.anthropic.requests[-1].body == raw.replace(
        b'"model":"claude-cached"', b'"model":"claude-sonnet-4-5-20250929"'
    )


def _grpc_params(model: str) -> messages_pb2.MessageParams:
    """MESSAGES_BODY as the proto a gRPC caller sends."""
    from siraya.router.codec.messages_request import decode_message_request

    return decode_message_request({**MESSAGES_BODY, "model": model})


def assert_anthropic_got_the_breakpoints(sent: Any) -> None:
    body = sent.json
    assert body["system"][1] == {"type": "text", "text": LONG_CONTEXT, "cache_control": ONE_HOUR}
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "Weather in Paris?", "cache_control": EPHEMERAL}
    ]
    assert body["messages"][2]["content"][0]["cache_control"] == EPHEMERAL
    assert body["messages"][2]["content"][0]["type"] == "tool_result"
    assert body["tools"][0]["cache_control"] == EPHEMERAL
    assert body["cache_control"] == EPHEMERAL
    assert sent.body.count(b'"cache_control":{"type":"ephemeral","ttl":"1h"}') == 1


def test_messages_cache_control_survives_the_translated_path_to_anthropic(
    gateway: CachingGatewayHarness,
) -> None:
    """A gRPC caller's proto is translated through chat even for Claude: the breakpoints stay."""
    auth = (("authorization", f"Bearer {gateway.api_key}"),)
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = messages_pb2_grpc.MessagesServiceStub(channel)
        stub.CreateMessage(
            messages_pb2.CreateMessageRequest(params=_grpc_params("claude-cached")), metadata=auth, timeout=20
        )
    assert_anthropic_got_the_breakpoints(gateway.anthropic.requests[-1])


def test_a_messages_fallback_to_claude_on_the_translated_path_keeps_cache_control(
    gateway: CachingGatewayHarness,
) -> None:
    params = _grpc_params("gpt-to-claude")
    params.routing.models.append("claude-cached")
    auth = (("authorization", f"Bearer {gateway.api_key}"),)
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = messages_pb2_grpc.MessagesServiceStub(channel)
        events = list(
            stub.StreamMessage(messages_pb2.StreamMessageRequest(params=params), metadata=auth, timeout=20)
        )
    assert events[0].event.message_start.message.model == "claude-cached"
    assert_anthropic_got_the_breakpoints(gateway.anthropic.requests[-1])


# --- cache usage and prices -------------------------------------------------------------------


def test_chat_cache_reads_and_writes_are_billed_at_their_prices(
    chat: openai.OpenAI, gateway: CachingGatewayHarness
) -> None:
    expected = claude_cost(1000, 4000, 2000, 500)
    before = gateway.credit_used()
    gateway.anthropic.script(ScriptedMessage([{"type": "text", "text": "cached"}], usage=CACHE_USAGE))
    raw = chat.chat.completions.with_raw_response.create(
        model="claude-cached", messages=[{"role": "user", "content": "hello"}], max_tokens=64
    )
    body = orjson.loads(raw.content)
    assert body["usage"]["prompt_tokens"] == 7000
    assert body["usage"]["prompt_tokens_details"]["cached_tokens"] == 4000
    assert body["usage"]["prompt_tokens_details"]["cache_write_tokens"] == 2000
    assert body["usage"]["cost"] == pytest.approx(expected, abs=1e-9)
    record = gateway.generation(raw.headers["x-request-id"])
    assert record["total_cost"] == pytest.approx(expected, abs=1e-9)
    assert (record["tokens_prompt"], record["native_tokens_cached"], record["native_tokens_cache_write"]) == (
        7000,
        4000,
        2000,
    )
    assert gateway.credit_used() - before == pytest.approx(expected, abs=1e-9)


def test_a_streamed_chat_is_billed_at_the_cache_prices_too(
    chat: openai.OpenAI, gateway: CachingGatewayHarness
) -> None:
    expected = claude_cost(1000, 4000, 2000, 500)
    gateway.anthropic.script(ScriptedMessage([{"type": "text", "text": "cached"}], usage=CACHE_USAGE))
    with chat.chat.completions.with_streaming_response.create(
        model="claude-cached",
        messages=[{"role": "user", "content": "hello"}],
        max_tokens=64,
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        request_id = response.headers["x-request-id"]
        chunks = [orjson.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")]
    usage = chunks[-1]["usage"]
    assert usage["prompt_tokens_details"] == {
        "cached_tokens": 4000,
        "audio_tokens": 0,
        "cache_write_tokens": 2000,
    }
    assert usage["cost"] == pytest.approx(expected, abs=1e-9)
    assert gateway.generation(request_id)["total_cost"] == pytest.approx(expected, abs=1e-9)


def test_messages_cache_usage_is_billed_at_the_cache_prices(gateway: CachingGatewayHarness) -> None:
    expected = claude_cost(1000, 4000, 2000, 500)
    before = gateway.credit_used()
    gateway.anthropic.script(ScriptedMessage([{"type": "text", "text": "cached"}], usage=CACHE_USAGE))
    response = httpx.post(
        gateway.root_url + "/v1/messages",
        json={"model": "claude-cached", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": gateway.api_key},
        timeout=20,
    )
    assert response.json()["usage"] == {**CACHE_USAGE, "cost": pytest.approx(expected, abs=1e-9)}
    record = gateway.generation(response.headers["x-request-id"])
    assert (record["native_tokens_cached"], record["native_tokens_cache_write"]) == (4000, 2000)
    assert record["total_cost"] == pytest.approx(expected, abs=1e-9)
    assert gateway.credit_used() - before == pytest.approx(expected, abs=1e-9)


def test_gemini_cache_reads_come_back_in_both_shapes_at_the_read_price(
    chat: openai.OpenAI, gateway: CachingGatewayHarness
) -> None:
    usage = {"promptTokenCount": 3000, "cachedContentTokenCount": 2000, "candidatesTokenCount": 100}
    p = GEMINI_PRICES
    expected = (1000 * p["input"] + 2000 * p["cache_read"] + 100 * p["output"]) / 1_000_000
    gateway.gemini.script(GeminiReply(text="cached", usage=usage))
    completion = chat.chat.completions.create(
        model="gemini-cached", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.usage is not None and completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 2000
    assert completion.usage.model_extra is not None
    assert completion.usage.model_extra["cost"] == pytest.approx(expected, abs=1e-9)
    gateway.gemini.script(GeminiReply(text="cached", usage=usage))
    message = httpx.post(
        gateway.root_url + "/v1/messages",
        json={"model": "gemini-cached", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": gateway.api_key},
        timeout=20,
    ).json()
    assert message["usage"]["input_tokens"] == 1000
    assert message["usage"]["cache_read_input_tokens"] == 2000
    assert message["usage"]["cost"] == pytest.approx(expected, abs=1e-9)


def test_models_show_the_cache_prices(gateway: CachingGatewayHarness) -> None:
    response = httpx.get(gateway.base_url + "/models/claude-cached", headers=gateway.auth(), timeout=20)
    assert response.json()["pricing"] == {
        "input_per_million": 3.0,
        "output_per_million": 15.0,
        "cache_read_per_million": 0.3,
        "cache_write_per_million": 3.75,
    }
    listed = httpx.get(gateway.base_url + "/models", headers=gateway.auth(), timeout=20).json()["data"]
    gemini = next(model for model in listed if model["id"] == "gemini-cached")
    assert gemini["pricing"]["cache_read_per_million"] == 0.25
    assert "cache_write_per_million" not in gemini["pricing"]


# --- prompt-cache affinity --------------------------------------------------------------------

REQUESTS = 12


def served_by(chat: openai.OpenAI, model: str, messages: list[Any], **extra: Any) -> str:
    raw = chat.chat.completions.with_raw_response.create(model=model, messages=messages, **extra)
    return str(orjson.loads(raw.content)["provider"])


def turn(first_question: str, n: int) -> list[Any]:
    """The n-th request of one conversation: the breakpoint moves to the newest turn each time."""
    messages: list[Any] = [
        {"role": "system", "content": "You answer questions about the handbook."},
        {"role": "user", "content": [{"type": "text", "text": first_question}]},
    ]
    for k in range(n):
        messages.append({"role": "assistant", "content": f"answer {k}"})
        messages.append({"role": "user", "content": [{"type": "text", "text": f"follow-up {k}"}]})
    messages[-1]["content"][0]["cache_control"] = EPHEMERAL
    return messages


def test_affinity_keeps_a_shared_prefix_on_one_deployment_of_three(chat: openai.OpenAI) -> None:
    conversation = [
        served_by(chat, "gpt-sticky", turn("What does chapter 1 say?", n)) for n in range(REQUESTS)
    ]
    assert len(set(conversation)) == 1, conversation
    # Streamed turns of the same conversation go there too.
    stream = chat.chat.completions.create(
        model="gpt-sticky", messages=turn("What does chapter 1 say?", REQUESTS), stream=True
    )
    providers = {chunk.model_extra["provider"] for chunk in stream if chunk.model_extra}
    assert providers == set(conversation)


def test_without_affinity_the_same_conversation_spreads(chat: openai.OpenAI) -> None:
    """The control: the same turns on the same three deployments, weighted at random, do not stick
    (all twelve on one of three by chance: 3 * 3^-12, about 1 in 177,000)."""
    served = [served_by(chat, "gpt-spread", turn("What does chapter 1 say?", n)) for n in range(REQUESTS)]
    assert len(set(served)) > 1, served


def test_affinity_spreads_distinct_prefixes(chat: openai.OpenAI) -> None:
    served = [
        served_by(chat, "gpt-sticky", turn(f"What does chapter {n + 2} say?", 0)) for n in range(REQUESTS)
    ]
    assert len(set(served)) > 1, served
    # Each prefix is sticky on its own.
    for n in range(3):
        again = served_by(chat, "gpt-sticky", turn(f"What does chapter {n + 2} say?", 1))
        assert again == served[n]


def test_an_explicit_provider_order_beats_affinity(chat: openai.OpenAI) -> None:
    messages = turn("What does the index say?", 0)
    first = served_by(chat, "gpt-sticky", messages)
    other = next(name for name in ("east", "west", "north") if name != first)
    counts = Counter(
        served_by(chat, "gpt-sticky", messages, extra_body={"provider": {"order": [other]}}) for _ in range(3)
    )
    assert counts == Counter({other: 3})
    assert served_by(chat, "gpt-sticky", messages) == first
