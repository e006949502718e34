"""pydantic-ai (`pydantic-ai-slim[openai]`) against a model on each upstream behind the gateway, with
its defaults, through both of its OpenAI models: `OpenAIChatModel` (Chat Completions) and
`OpenAIResponsesModel` (the Responses API).

The agent runs its own loops: a tool round trip is one `run`, and structured output is by function
calling unless the output type says otherwise (`NativeOutput`: json_schema).
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from tests.e2e.clients_harness import UPSTREAMS, ClientsGatewayHarness, UpstreamUnderTest

pydantic_ai = pytest.importorskip("pydantic_ai")
openai_models = pytest.importorskip("pydantic_ai.models.openai")
openai_provider = pytest.importorskip("pydantic_ai.providers.openai")
embeddings = pytest.importorskip("pydantic_ai.embeddings")
openai_embeddings = pytest.importorskip("pydantic_ai.embeddings.openai")

APIS = ("chat", "responses")


class Weather(BaseModel):
    city: str
    celsius: int


@pytest.fixture(params=UPSTREAMS)
def upstream(request: pytest.FixtureRequest, clients_gateway: ClientsGatewayHarness) -> UpstreamUnderTest:
    return clients_gateway.upstream(request.param)


@pytest.fixture(params=APIS)
def model(
    request: pytest.FixtureRequest, clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest
) -> Any:
    provider = openai_provider.OpenAIProvider(
        base_url=clients_gateway.base_url, api_key=clients_gateway.api_key
    )
    if request.param == "chat":
        return openai_models.OpenAIChatModel(upstream.chat_model, provider=provider)
    return openai_models.OpenAIResponsesModel(upstream.chat_model, provider=provider)


def test_invoke(model: Any) -> None:
    result = pydantic_ai.Agent(model).run_sync("Say hello")
    assert "Say hello" in result.output
    usage = result.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0 and usage.requests == 1


async def test_stream_with_usage(model: Any) -> None:
    agent = pydantic_ai.Agent(model)
    pieces = []
    async with agent.run_stream("Stream hello") as run:
        async for piece in run.stream_text(delta=True, debounce_by=None):
            pieces.append(piece)
        usage = run.usage
    assert len(pieces) > 1 and "Stream hello" in "".join(pieces)
    assert usage.input_tokens > 0 and usage.output_tokens > 0


def test_tool_round_trip(model: Any, upstream: UpstreamUnderTest) -> None:
    agent = pydantic_ai.Agent(model)

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        return f"SUNNY-42 in {city}"

    upstream.script_tool_call("get_weather", {"city": "Paris"})
    result = agent.run_sync("What is the weather in Paris?")
    assert "SUNNY-42 in Paris" in result.output
    assert result.usage.requests == 2
    calls = [
        part
        for message in result.all_messages()
        for part in message.parts
        if isinstance(part, pydantic_ai.messages.ToolCallPart)
    ]
    assert [(call.tool_name, call.args_as_dict()) for call in calls] == [("get_weather", {"city": "Paris"})]


def test_structured_output_by_function_calling(model: Any, upstream: UpstreamUnderTest) -> None:
    result = pydantic_ai.Agent(model, output_type=Weather).run_sync("Weather in Paris?")
    assert isinstance(result.output, Weather)
    assert upstream.forced_tool() in ("final_result", "*")
    assert upstream.requested_schema() is None


def test_structured_output_by_json_schema(model: Any, upstream: UpstreamUnderTest) -> None:
    agent = pydantic_ai.Agent(model, output_type=pydantic_ai.NativeOutput(Weather))
    result = agent.run_sync("Weather in Paris?")
    assert isinstance(result.output, Weather)
    assert upstream.requested_schema()["required"] == ["city", "celsius"]
    assert upstream.forced_tool() is None


def test_embeddings(clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest) -> None:
    if upstream.embedding_model is None:
        pytest.skip(f"the {upstream.name} upstream has no embeddings")
    provider = openai_provider.OpenAIProvider(
        base_url=clients_gateway.base_url, api_key=clients_gateway.api_key
    )
    embedder = embeddings.Embedder(
        openai_embeddings.OpenAIEmbeddingModel(upstream.embedding_model, provider=provider)
    )
    documents = embedder.embed_documents_sync(["hello world", "the second document"])
    vectors = [list(vector) for vector in documents.embeddings]
    assert len(vectors) == 2 and all(vectors) and vectors[0] != vectors[1]
    query = embedder.embed_query_sync("hello world")
    assert list(query.embeddings[0]) == vectors[0]
