"""The response cache through the official SDK and raw HTTP: hits never reach the upstream and cost
nothing, a streamed hit has the shape of a miss, keys never share answers, the ledger records hits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.e2e.state_harness import StateHarness

CHAT_PATH = "/v1/chat/completions"


@pytest.fixture(scope="module", params=["in_process", "grpc_hop"])
def harness(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StateHarness]:
    running = StateHarness(tmp_path_factory.mktemp(request.param), in_process=request.param == "in_process")
    running.start()
    yield running
    running.stop()


@pytest.fixture
def client(harness: StateHarness) -> openai.OpenAI:
    return openai.OpenAI(base_url=harness.base_url, api_key=harness.api_key, max_retries=0, timeout=20)


def chat_calls(harness: StateHarness) -> int:
    return len(harness.chat_only.requests_to(CHAT_PATH))


def unique(text: str, request: pytest.FixtureRequest) -> str:
    """A prompt no other test (or mode) sends, so the cache starts cold for it."""
    return f"{text} [{request.node.nodeid}]"


def test_a_hit_does_not_reach_the_upstream_and_costs_nothing(
    client: openai.OpenAI, harness: StateHarness, request: pytest.FixtureRequest
) -> None:
    messages: Any = [{"role": "user", "content": unique("Cache me.", request)}]
    before = chat_calls(harness)
    first = client.chat.completions.with_raw_response.create(
        model="gpt-cached", messages=messages, temperature=0
    )
    second = client.chat.completions.with_raw_response.create(
        model="gpt-cached", messages=messages, temperature=0, user="someone", metadata={"a": "b"}
    )
    assert chat_calls(harness) == before + 1
    assert first.headers["x-siraya-cache"] == "miss" and second.headers["x-siraya-cache"] == "hit"
    miss, hit = first.parse(), second.parse()
    assert hit.choices[0].message.content == miss.choices[0].message.content
    assert hit.id == miss.id and hit.model == "gpt-cached"
    assert miss.usage is not None and miss.usage.model_extra["cost"] > 0  # type: ignore[index]
    assert hit.usage is not None and hit.usage.model_extra["cost"] == 0  # type: ignore[index]
    assert hit.usage.total_tokens == miss.usage.total_tokens

    # A different message is a different answer.
    client.chat.completions.create(
        model="gpt-cached", messages=[{"role": "user", "content": unique("Other.", request)}], temperature=0
    )
    assert chat_calls(harness) == before + 2


def test_sampled_requests_are_cached_only_where_the_model_allows(
    client: openai.OpenAI, harness: StateHarness, request: pytest.FixtureRequest
) -> None:
    messages: Any = [{"role": "user", "content": unique("Surprise me.", request)}]
    before = chat_calls(harness)
    for _ in range(2):  # temperature unset is the upstream's default, 1: sampled
        raw = client.chat.completions.with_raw_response.create(model="gpt-cached", messages=messages)
        assert "x-siraya-cache" not in raw.headers
    assert chat_calls(harness) == before + 2
    for _ in range(2):  # a seed makes it repeatable
        client.chat.completions.create(model="gpt-cached", messages=messages, temperature=0.7, seed=7)
    assert chat_calls(harness) == before + 3
    for _ in range(2):  # this model caches sampled answers too
        client.chat.completions.create(model="gpt-sampled", messages=messages, temperature=0.9)
    assert chat_calls(harness) == before + 4


def test_the_request_header_opts_in_and_out(
    client: openai.OpenAI, harness: StateHarness, request: pytest.FixtureRequest
) -> None:
    messages: Any = [{"role": "user", "content": unique("Header.", request)}]
    before = chat_calls(harness)
    opt_in = {"x-siraya-cache": "ttl=60"}
    client.chat.completions.create(model="gpt-chat", messages=messages, temperature=0, extra_headers=opt_in)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-chat", messages=messages, temperature=0, extra_headers=opt_in
    )
    assert raw.headers["x-siraya-cache"] == "hit"
    assert chat_calls(harness) == before + 1
    for _ in range(2):
        client.chat.completions.create(
            model="gpt-cached", messages=messages, temperature=0, extra_headers={"x-siraya-cache": "no-store"}
        )
    assert chat_calls(harness) == before + 3
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="gpt-cached", messages=messages, temperature=0, extra_headers={"x-siraya-cache": "forever"}
        )


def sse_frames(harness: StateHarness, key: str, body: dict[str, Any]) -> tuple[dict[str, str], list[Any]]:
    with httpx.stream(
        "POST",
        f"{harness.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json=body,
        timeout=20,
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line]
        headers = dict(response.headers)
    assert lines[-1] == "data: [DONE]"
    return headers, [orjson.loads(line.removeprefix("data: ")) for line in lines[:-1]]


def shape(value: Any) -> Any:
    """The JSON's structure and text, without the values that differ between a miss and a hit."""
    if isinstance(value, dict):
        return {key: (shape(item) if key != "cost" else "cost") for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return value


@pytest.mark.parametrize("model", ["gpt-cached", "claude-cached"])
def test_a_stream_hit_has_the_shape_of_the_miss(
    harness: StateHarness, request: pytest.FixtureRequest, model: str
) -> None:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": unique("Stream this answer please.", request)}],
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    upstream = harness.chat_only if model == "gpt-cached" else harness.anthropic
    before = len(upstream.requests)
    miss_headers, miss = sse_frames(harness, harness.api_key, body)
    hit_headers, hit = sse_frames(harness, harness.api_key, body)
    assert len(upstream.requests) == before + 1
    assert miss_headers["x-siraya-cache"] == "miss" and hit_headers["x-siraya-cache"] == "hit"
    assert len(hit) > 2 and shape(hit) == shape(miss)
    assert miss[-1]["usage"]["cost"] > 0 and hit[-1]["usage"]["cost"] == 0
    # Without include_usage it is another answer shape, cached on its own.
    del body["stream_options"]
    _, plain = sse_frames(harness, harness.api_key, body)
    assert all(frame.get("usage") is None for frame in plain)
    assert len(upstream.requests) == before + 2


def test_keys_never_share_answers(
    client: openai.OpenAI, harness: StateHarness, request: pytest.FixtureRequest
) -> None:
    other = openai.OpenAI(base_url=harness.base_url, api_key=harness.other_key, max_retries=0)
    messages: Any = [{"role": "user", "content": unique("Mine only.", request)}]
    before = chat_calls(harness)
    client.chat.completions.create(model="gpt-cached", messages=messages, temperature=0)
    raw = other.chat.completions.with_raw_response.create(
        model="gpt-cached", messages=messages, temperature=0
    )
    assert raw.headers["x-siraya-cache"] == "miss"
    assert chat_calls(harness) == before + 2
    again = other.chat.completions.with_raw_response.create(
        model="gpt-cached", messages=messages, temperature=0
    )
    assert again.headers["x-siraya-cache"] == "hit"
    assert chat_calls(harness) == before + 2


def test_the_ledger_records_hits_at_zero_cost_with_the_saving(
    client: openai.OpenAI, harness: StateHarness, request: pytest.FixtureRequest
) -> None:
    messages: Any = [{"role": "user", "content": unique("Ledger.", request)}]
    auth = {"Authorization": f"Bearer {harness.api_key}"}
    miss = client.chat.completions.with_raw_response.create(
        model="gpt-cached", messages=messages, temperature=0
    )
    used = httpx.get(f"{harness.base_url}/key", headers=auth).json()["data"]["usage"]
    hit = client.chat.completions.with_raw_response.create(
        model="gpt-cached", messages=messages, temperature=0
    )
    assert httpx.get(f"{harness.base_url}/key", headers=auth).json()["data"]["usage"] == used

    def generation(raw: Any) -> dict[str, Any]:
        url = f"{harness.base_url}/generation?id={raw.headers['x-request-id']}"
        for _ in range(50):  # the ledger is written in batches
            found = httpx.get(url, headers=auth)
            if found.status_code == 200:
                return found.json()["data"]  # type: ignore[no-any-return]
            harness.run(__import__("asyncio").sleep(0.05))
        raise AssertionError(found.text)

    first, second = generation(miss), generation(hit)
    assert first["status"] == "success" and first["total_cost"] > 0 and first["cache_hit"] is False
    assert second["status"] == "cache_hit" and second["cache_hit"] is True
    assert second["total_cost"] == 0 and second["cache_saved"] == pytest.approx(first["total_cost"])
    assert second["tokens_prompt"] == first["tokens_prompt"] and second["provider_name"] == "chatonly"


def test_embeddings_and_responses_are_cached(
    client: openai.OpenAI, harness: StateHarness, request: pytest.FixtureRequest
) -> None:
    embed_path = "/v1/embeddings"
    before = len(harness.native.requests_to(embed_path))
    text = unique("embed me", request)
    first = client.embeddings.create(model="embed-cached", input=[text, "two"])
    second = client.embeddings.with_raw_response.create(model="embed-cached", input=[text, "two"])
    assert second.headers["x-siraya-cache"] == "hit"
    assert second.parse().data[0].embedding == first.data[0].embedding
    assert len(harness.native.requests_to(embed_path)) == before + 1

    before = chat_calls(harness)
    prompt = unique("Respond once.", request)
    one = client.responses.create(model="gpt-cached", input=prompt, temperature=0)
    two = client.responses.create(model="gpt-cached", input=prompt, temperature=0)
    assert chat_calls(harness) == before + 1
    assert two.output_text == one.output_text and two.id != one.id
    assert client.responses.retrieve(two.id).output_text == one.output_text


def test_metrics_count_hits_misses_and_savings(
    client: openai.OpenAI, harness: StateHarness, request: pytest.FixtureRequest
) -> None:
    messages: Any = [{"role": "user", "content": unique("Metrics.", request)}]
    for _ in range(2):
        client.chat.completions.create(model="gpt-cached", messages=messages, temperature=0)
    text = httpx.get(harness.root_url + "/metrics").text
    assert 'siraya_cache_lookups_total{model="gpt-cached",result="hit"}' in text
    assert 'siraya_cache_lookups_total{model="gpt-cached",result="miss"}' in text
    assert "siraya_cache_stored_bytes_total" in text and "siraya_cache_memory_bytes" in text
    assert 'siraya_cache_saved_usd_total{model="gpt-cached"}' in text


def test_single_turn_requests_that_mean_the_same_share_an_answer(
    client: openai.OpenAI, harness: StateHarness, request: pytest.FixtureRequest
) -> None:
    harness.native.embed_loosely = True  # the fake's stand-in for "means the same"
    try:
        system: Any = {"role": "system", "content": "Be terse."}

        def ask(*messages: Any, **fields: Any) -> Any:
            return client.chat.completions.with_raw_response.create(
                model="gpt-semantic", messages=[system, *messages], temperature=0, **fields
            )

        question = unique("What is the capital of France?", request)
        before = chat_calls(harness)
        first = ask({"role": "user", "content": question})
        assert first.headers["x-siraya-cache"] == "miss"
        alike = ask({"role": "user", "content": unique("what is the capital of france", request)})
        assert alike.headers["x-siraya-cache"] == "hit"
        assert alike.parse().choices[0].message.content == first.parse().choices[0].message.content
        assert chat_calls(harness) == before + 1

        # Another question, other parameters, or a second turn: never a semantic hit.
        other = ask({"role": "user", "content": unique("What is the capital of Spain?", request)})
        assert other.headers["x-siraya-cache"] == "miss"
        longer = ask(
            {"role": "user", "content": unique("what is the capital of france", request)}, max_tokens=5
        )
        assert longer.headers["x-siraya-cache"] == "miss"
        second_turn = ask(
            {"role": "user", "content": "Hi."},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": unique("what is the capital of france", request)},
        )
        assert second_turn.headers["x-siraya-cache"] == "miss"
        assert chat_calls(harness) == before + 4
        # The key's embedding calls went to the embedding model like any request of it.
        embedded = [sent.json["input"] for sent in harness.native.requests_to("/v1/embeddings")]
        assert question in embedded
    finally:
        harness.native.embed_loosely = False
