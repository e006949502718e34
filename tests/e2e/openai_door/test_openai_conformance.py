"""OpenAI-protocol models, native and chat-backed: every surface's bytes match OpenAI's schemas."""

from __future__ import annotations

import pytest

from tests.e2e.conformance import Surfaces
from tests.e2e.harness import GatewayHarness

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
CHAT_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}
RESPONSE_TOOL = {"type": "function", "name": "get_weather", "parameters": SCHEMA}


def test_chat_surfaces_match_openai_schemas(harness: GatewayHarness) -> None:
    surfaces = Surfaces(harness.base_url, harness.api_key, "gpt-test")
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    surfaces.chat(messages=ask)
    called = surfaces.chat(messages=ask, tools=[CHAT_TOOL])
    assert called["choices"][0]["finish_reason"] == "tool_calls"
    chunks = surfaces.chat_stream(messages=ask, stream_options={"include_usage": True})
    assert chunks[-1]["usage"] is not None
    surfaces.chat_stream(messages=ask, tools=[CHAT_TOOL])


@pytest.mark.parametrize("model", ["gpt-test", "gpt-translated"])
def test_responses_surfaces_match_openai_schemas(harness: GatewayHarness, model: str) -> None:
    surfaces = Surfaces(harness.base_url, harness.api_key, model)
    surfaces.response(input="hi", instructions="Be brief.")
    function_call = surfaces.response(input="Paris?", tools=[RESPONSE_TOOL])
    assert [item["type"] for item in function_call["output"]] == ["function_call"]
    events = surfaces.response_stream(input="hi")
    assert events[-1]["type"] == "response.completed"
    surfaces.response_stream(input="Paris?", tools=[RESPONSE_TOOL])


def test_embeddings_and_images_match_openai_schemas(harness: GatewayHarness) -> None:
    embed = Surfaces(harness.base_url, harness.api_key, "embed-test")
    embed.embeddings(input=["one", "two"], encoding_format="float")
    embed.embeddings(input="one", encoding_format="base64")
    Surfaces(harness.base_url, harness.api_key, "image-test").images(prompt="a red square")
