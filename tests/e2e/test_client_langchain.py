"""LangChain's OpenAI integration (`langchain-openai`), with its default settings, against a model on
each upstream behind the gateway: invoke, stream (with usage when asked), a tool round trip,
structured output by json_schema and by function calling, and embeddings. Each through Chat
Completions (the default) and the Responses API (`use_responses_api=True`, which LangChain also
switches to by itself for some features).

Defaults that once failed: `with_structured_output(method="function_calling")` sends
`parallel_tool_calls: false` and a named tool_choice; `OpenAIEmbeddings` sends cl100k token ids
instead of text. Both used to be a 400 on Gemini models.
"""

from __future__ import annotations

from typing import Any

import pytest
import tiktoken.registry
from pydantic import BaseModel

from server import tokens
from tests.e2e.clients_harness import UPSTREAMS, ClientsGatewayHarness, UpstreamUnderTest

langchain_openai = pytest.importorskip("langchain_openai")
messages = pytest.importorskip("langchain_core.messages")
langchain_tools = pytest.importorskip("langchain_core.tools")


class Weather(BaseModel):
    city: str
    celsius: int


@pytest.fixture(scope="module", autouse=True)
def offline_cl100k() -> None:
    # LangChain tokenizes with tiktoken, which would fetch cl100k_base over the network: give it the
    # gateway's offline copy, as a machine with the file in tiktoken's cache would have.
    tiktoken.registry.ENCODINGS.setdefault("cl100k_base", tokens.encoding("cl100k_base"))


@pytest.fixture(params=UPSTREAMS)
def upstream(request: pytest.FixtureRequest, clients_gateway: ClientsGatewayHarness) -> UpstreamUnderTest:
    return clients_gateway.upstream(request.param)


@pytest.fixture(params=["chat", "responses"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def chat_model(gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest, api: str, **settings: Any) -> Any:
    return langchain_openai.ChatOpenAI(
        model=upstream.chat_model,
        base_url=gateway.base_url,
        api_key=gateway.api_key,
        max_retries=0,
        timeout=20,
        use_responses_api=api == "responses",
        **settings,
    )


@langchain_tools.tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"SUNNY-42 in {city}"


def test_invoke(clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest, api: str) -> None:
    answer = chat_model(clients_gateway, upstream, api).invoke("Say hello")
    assert "Say hello" in answer.text
    assert answer.usage_metadata["input_tokens"] > 0 and answer.usage_metadata["output_tokens"] > 0
    assert answer.response_metadata["model_name"] == upstream.chat_model


def test_stream_with_usage(
    clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest, api: str
) -> None:
    # With a base_url of its own, LangChain asks for chat stream usage only with stream_usage=True.
    plain = list(chat_model(clients_gateway, upstream, api).stream("Stream hello"))
    assert "Stream hello" in "".join(chunk.text for chunk in plain)
    chunks = list(chat_model(clients_gateway, upstream, api, stream_usage=True).stream("Stream hello"))
    assert len(chunks) > 2
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert "Stream hello" in total.text
    usage = total.usage_metadata
    assert usage is not None and usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


@pytest.mark.parametrize("streamed", [False, True], ids=["unary", "streamed"])
def test_tool_round_trip(
    clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest, api: str, streamed: bool
) -> None:
    llm = chat_model(clients_gateway, upstream, api).bind_tools([get_weather])
    upstream.script_tool_call("get_weather", {"city": "Paris"})
    history: list[Any] = [messages.HumanMessage("What is the weather in Paris?")]
    if streamed:
        chunks = list(llm.stream(history))
        first = chunks[0]
        for chunk in chunks[1:]:
            first += chunk
    else:
        first = llm.invoke(history)
    assert [(call["name"], call["args"]) for call in first.tool_calls] == [("get_weather", {"city": "Paris"})]
    history += [first, get_weather.invoke(first.tool_calls[0])]
    final = llm.invoke(history)
    assert "SUNNY-42 in Paris" in final.text
    assert not final.tool_calls


def test_structured_output_by_json_schema(
    clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest, api: str
) -> None:
    llm = chat_model(clients_gateway, upstream, api)
    result = llm.with_structured_output(Weather, method="json_schema").invoke("Weather in Paris?")
    assert isinstance(result, Weather)
    assert upstream.requested_schema()["required"] == ["city", "celsius"]
    assert upstream.forced_tool() is None


def test_structured_output_by_function_calling(
    clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest, api: str
) -> None:
    llm = chat_model(clients_gateway, upstream, api)
    result = llm.with_structured_output(Weather, method="function_calling").invoke("Weather in Paris?")
    assert isinstance(result, Weather)
    assert upstream.forced_tool() == "Weather"
    assert upstream.requested_schema() is None
    if upstream.name == "openai":
        assert upstream.generations()[-1]["parallel_tool_calls"] is False


def test_embeddings_with_token_ids_by_default(
    clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest
) -> None:
    if upstream.embedding_model is None:
        pytest.skip(f"the {upstream.name} upstream has no embeddings")
    embeddings = langchain_openai.OpenAIEmbeddings(
        model=upstream.embedding_model, base_url=clients_gateway.base_url, api_key=clients_gateway.api_key
    )
    vectors = embeddings.embed_documents(["hello world", "the second document"])
    assert len(vectors) == 2 and all(vectors) and vectors[0] != vectors[1]
    assert embeddings.embed_query("hello world") == vectors[0]
    if upstream.name == "gemini":
        sent = clients_gateway.gemini.requests_to("gemini-embedding-001:batchEmbedContents")[-2].json
        assert [r["content"]["parts"][0]["text"] for r in sent["requests"]] == [
            "hello world",
            "the second document",
        ]
