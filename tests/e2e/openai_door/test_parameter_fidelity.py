"""Parameters the gateway honours itself where the upstream cannot be told, with the real SDK:
`parallel_tool_calls: false` keeps at most one tool call (Gemini and Anthropic), and token-id
embedding input reaches a text-only upstream (Gemini) as the text it was made from."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from server import tokens
from tests.e2e.anthropic_harness import AnthropicGatewayHarness
from tests.e2e.gemini_harness import GeminiGatewayHarness
from tests.fakes.anthropic_upstream import ScriptedMessage
from tests.fakes.gemini_upstream import GeminiReply, ScriptedCall

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ASK = [{"role": "user", "content": "Weather in Paris and Oslo?"}]


@pytest.fixture(scope="module")
def gemini(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GeminiGatewayHarness]:
    harness = GeminiGatewayHarness(tmp_path_factory.mktemp("fidelity_gemini"), in_process=True).start()
    yield harness
    harness.stop()


@pytest.fixture(scope="module")
def anthropic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnthropicGatewayHarness]:
    harness = AnthropicGatewayHarness(tmp_path_factory.mktemp("fidelity_anthropic"), in_process=True).start()
    yield harness
    harness.stop()


def sdk(harness: GeminiGatewayHarness | AnthropicGatewayHarness) -> openai.OpenAI:
    return openai.OpenAI(base_url=harness.base_url, api_key=harness.api_key, max_retries=0, timeout=20)


def two_gemini_calls() -> GeminiReply:
    return GeminiReply(
        calls=[ScriptedCall("get_weather", {"city": "Paris"}), ScriptedCall("get_weather", {"city": "Oslo"})]
    )


def two_anthropic_calls() -> ScriptedMessage:
    return ScriptedMessage(
        content=[
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Oslo"}},
        ],
        stop_reason="tool_use",
    )


def streamed_calls(stream: Any) -> dict[int, dict[str, str]]:
    """Tool calls assembled from a chat stream, by index."""
    calls: dict[int, dict[str, str]] = {}
    for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"name": "", "arguments": ""})
                call["name"] += delta.function.name or ""
                call["arguments"] += delta.function.arguments or ""
    return calls


def test_gemini_keeps_one_tool_call_when_parallel_calls_are_off(gemini: GeminiGatewayHarness) -> None:
    client = sdk(gemini)
    gemini.upstream.script(two_gemini_calls())
    both = client.chat.completions.create(model="gemini-flash", messages=ASK, tools=[WEATHER])  # type: ignore[arg-type, list-item]
    assert len(both.choices[0].message.tool_calls or []) == 2, "the fake does answer with two calls"

    gemini.upstream.script(two_gemini_calls())
    one = client.chat.completions.create(
        model="gemini-flash",
        messages=ASK,
        tools=[WEATHER],
        parallel_tool_calls=False,  # type: ignore[arg-type, list-item]
    )
    calls = one.choices[0].message.tool_calls or []
    assert [call.function.arguments for call in calls] == ['{"city":"Paris"}']  # type: ignore[union-attr]
    assert one.choices[0].finish_reason == "tool_calls"

    gemini.upstream.script(two_gemini_calls())
    stream = client.chat.completions.create(
        model="gemini-flash",
        messages=ASK,
        tools=[WEATHER],
        parallel_tool_calls=False,
        stream=True,  # type: ignore[arg-type, list-item]
    )
    assert list(streamed_calls(stream).values()) == [{"name": "get_weather", "arguments": '{"city":"Paris"}'}]


def test_anthropic_keeps_one_tool_call_when_parallel_calls_are_off(
    anthropic: AnthropicGatewayHarness,
) -> None:
    client = sdk(anthropic)
    anthropic.upstream.script(two_anthropic_calls())
    one = client.chat.completions.create(
        model="claude-sonnet",
        messages=ASK,
        tools=[WEATHER],
        parallel_tool_calls=False,  # type: ignore[arg-type, list-item]
    )
    assert [call.id for call in one.choices[0].message.tool_calls or []] == ["toolu_1"]
    sent = anthropic.upstream.requests[-1].json
    assert sent["tool_choice"]["disable_parallel_tool_use"] is True

    anthropic.upstream.script(two_anthropic_calls())
    stream = client.chat.completions.create(
        model="claude-sonnet",
        messages=ASK,
        tools=[WEATHER],
        parallel_tool_calls=False,
        stream=True,  # type: ignore[arg-type, list-item]
    )
    assert list(streamed_calls(stream)) == [0]


def test_token_id_embedding_input_reaches_gemini_as_text(gemini: GeminiGatewayHarness) -> None:
    client = sdk(gemini)
    encoding = tokens.encoding("cl100k_base")
    texts = ["hello world", "Grüße aus Köln"]
    ids = [encoding.encode(text) for text in texts]
    listed = client.embeddings.create(model="gemini-embed", input=ids, encoding_format="float")
    assert [item.index for item in listed.data] == [0, 1] and all(item.embedding for item in listed.data)
    sent = gemini.upstream.requests_to("gemini-embedding-001:batchEmbedContents")[-1].json
    assert [r["content"]["parts"][0]["text"] for r in sent["requests"]] == texts

    single = client.embeddings.create(model="gemini-embed", input=ids[1], encoding_format="float")
    assert len(single.data) == 1
    sent = gemini.upstream.requests_to("gemini-embedding-001:batchEmbedContents")[-1].json
    assert sent["requests"][0]["content"]["parts"][0]["text"] == texts[1]

    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="gemini-embed", input=[[15339, 100256]])
    assert "input[0][1] is 100256" in str(caught.value)
