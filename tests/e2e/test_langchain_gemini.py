"""LangChain's OpenAI integration, with its default settings, against Gemini models behind the gateway.

`with_structured_output(method="function_calling")` sends `parallel_tool_calls: false` and a named
tool_choice; `OpenAIEmbeddings` sends cl100k token ids instead of text. Both used to be a 400.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import tiktoken.registry
from pydantic import BaseModel

from server import tokens
from tests.e2e.gemini_harness import GeminiGatewayHarness

langchain_openai = pytest.importorskip("langchain_openai")


class Weather(BaseModel):
    city: str
    celsius: int


@pytest.fixture(scope="module")
def gemini(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GeminiGatewayHarness]:
    # LangChain tokenizes with tiktoken, which would fetch cl100k_base over the network: give it the
    # gateway's offline copy, as a machine with the file in tiktoken's cache would have.
    tiktoken.registry.ENCODINGS.setdefault("cl100k_base", tokens.encoding("cl100k_base"))
    harness = GeminiGatewayHarness(tmp_path_factory.mktemp("langchain_gemini"), in_process=True).start()
    yield harness
    harness.stop()


def test_structured_output_by_function_calling(gemini: GeminiGatewayHarness) -> None:
    llm = langchain_openai.ChatOpenAI(
        model="gemini-flash", base_url=gemini.base_url, api_key=gemini.api_key, max_retries=0, timeout=20
    )
    result = llm.with_structured_output(Weather, method="function_calling").invoke("Weather in Paris?")
    assert isinstance(result, Weather)
    sent = gemini.upstream.requests_to("gemini-2.5-flash:generateContent")[-1].json
    calling = sent["toolConfig"]["functionCallingConfig"]
    assert (calling["mode"], calling["allowedFunctionNames"]) == ("ANY", ["Weather"])


def test_embeddings_with_token_ids_by_default(gemini: GeminiGatewayHarness) -> None:
    embeddings = langchain_openai.OpenAIEmbeddings(
        model="gemini-embed", base_url=gemini.base_url, api_key=gemini.api_key, max_retries=0
    )
    vectors = embeddings.embed_documents(["hello world", "the second document"])
    assert len(vectors) == 2 and all(vectors)
    sent = gemini.upstream.requests_to("gemini-embedding-001:batchEmbedContents")[-1].json
    assert [r["content"]["parts"][0]["text"] for r in sent["requests"]] == [
        "hello world",
        "the second document",
    ]
    assert embeddings.embed_query("hello world")
