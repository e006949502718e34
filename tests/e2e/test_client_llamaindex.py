"""LlamaIndex (`llama-index-llms-openai-like`, `llama-index-embeddings-openai-like`) against a model on
each upstream behind the gateway, with the library's defaults.

`OpenAILike` is told what the model is, as its own documentation does: `is_chat_model=True` (else it
would call the legacy /v1/completions, which the gateway does not serve) and
`is_function_calling_model=True`; `should_use_structured_outputs=True` picks json_schema for
structured output, and without it LlamaIndex extracts by function calling (tool_choice "required",
`parallel_tool_calls: false`). Stream usage is asked for the way LlamaIndex passes any OpenAI
parameter, `additional_kwargs`.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from tests.e2e.clients_harness import UPSTREAMS, ClientsGatewayHarness, UpstreamUnderTest

openai_like = pytest.importorskip("llama_index.llms.openai_like")
embeddings_like = pytest.importorskip("llama_index.embeddings.openai_like")
llms = pytest.importorskip("llama_index.core.llms")
prompts = pytest.importorskip("llama_index.core.prompts")
core_tools = pytest.importorskip("llama_index.core.tools")


class Weather(BaseModel):
    city: str
    celsius: int


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"SUNNY-42 in {city}"


WEATHER_TOOL = core_tools.FunctionTool.from_defaults(fn=get_weather)
WEATHER_PROMPT = prompts.PromptTemplate("What is the weather in {city}?")


@pytest.fixture(params=UPSTREAMS)
def upstream(request: pytest.FixtureRequest, clients_gateway: ClientsGatewayHarness) -> UpstreamUnderTest:
    return clients_gateway.upstream(request.param)


def llm(gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest, **settings: Any) -> Any:
    return openai_like.OpenAILike(
        model=upstream.chat_model,
        api_base=gateway.base_url,
        api_key=gateway.api_key,
        is_chat_model=True,
        is_function_calling_model=True,
        max_retries=0,
        timeout=20,
        **settings,
    )


def test_complete_and_chat(clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest) -> None:
    model = llm(clients_gateway, upstream)
    assert "Say hello" in model.complete("Say hello").text
    answer = model.chat([llms.ChatMessage(role="user", content="Chat hello")])
    assert "Chat hello" in str(answer.message.content)
    assert answer.raw.usage.prompt_tokens > 0 and answer.raw.usage.completion_tokens > 0


def test_stream_with_usage(clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest) -> None:
    plain = list(llm(clients_gateway, upstream).stream_complete("Stream hello"))
    assert "Stream hello" in plain[-1].text
    model = llm(clients_gateway, upstream, additional_kwargs={"stream_options": {"include_usage": True}})
    chunks = list(model.stream_chat([llms.ChatMessage(role="user", content="Stream hello")]))
    assert len(chunks) > 2 and "Stream hello" in str(chunks[-1].message.content)
    counted = [chunk.additional_kwargs for chunk in chunks if chunk.additional_kwargs.get("prompt_tokens")]
    assert counted, "no chunk carried the usage"
    usage = counted[-1]
    assert usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


@pytest.mark.parametrize("streamed", [False, True], ids=["unary", "streamed"])
def test_tool_round_trip(
    clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest, streamed: bool
) -> None:
    model = llm(clients_gateway, upstream)
    upstream.script_tool_call("get_weather", {"city": "Paris"})
    history = [llms.ChatMessage(role="user", content="What is the weather in Paris?")]
    if streamed:
        first = list(model.stream_chat_with_tools([WEATHER_TOOL], chat_history=history))[-1]
    else:
        first = model.chat_with_tools([WEATHER_TOOL], chat_history=history)
    [call] = model.get_tool_calls_from_response(first, error_on_no_tool_call=True)
    assert (call.tool_name, call.tool_kwargs) == ("get_weather", {"city": "Paris"})
    history.append(first.message)
    history.append(
        llms.ChatMessage(
            role="tool",
            content=str(WEATHER_TOOL(**call.tool_kwargs)),
            additional_kwargs={"tool_call_id": call.tool_id, "name": call.tool_name},
        )
    )
    final = model.chat_with_tools([WEATHER_TOOL], chat_history=history)
    assert "SUNNY-42 in Paris" in str(final.message.content)
    assert not model.get_tool_calls_from_response(final, error_on_no_tool_call=False)


def test_structured_output_by_json_schema(
    clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest
) -> None:
    model = llm(clients_gateway, upstream, should_use_structured_outputs=True)
    result = model.structured_predict(Weather, WEATHER_PROMPT, city="Paris")
    assert isinstance(result, Weather)
    assert upstream.requested_schema()["required"] == ["city", "celsius"]
    assert upstream.forced_tool() is None


def test_structured_output_by_function_calling(
    clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest
) -> None:
    model = llm(clients_gateway, upstream)
    result = model.structured_predict(Weather, WEATHER_PROMPT, city="Paris")
    assert isinstance(result, Weather)
    assert upstream.forced_tool() in ("Weather", "*")
    structured = model.as_structured_llm(Weather).complete("What is the weather in Paris?")
    assert isinstance(structured.raw, Weather)
    assert upstream.requested_schema() is None


def test_embeddings(clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest) -> None:
    if upstream.embedding_model is None:
        pytest.skip(f"the {upstream.name} upstream has no embeddings")
    embedder = embeddings_like.OpenAILikeEmbedding(
        model_name=upstream.embedding_model,
        api_base=clients_gateway.base_url,
        api_key=clients_gateway.api_key,
        max_retries=0,
    )
    vectors = embedder.get_text_embedding_batch(["hello world", "the second document"])
    assert len(vectors) == 2 and all(vectors) and vectors[0] != vectors[1]
    assert embedder.get_query_embedding("hello world") == vectors[0]
