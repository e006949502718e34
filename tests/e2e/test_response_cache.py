"""The response cache through the official SDK and raw HTTP: hits never reach the upstream and cost
nothing, a streamed hit has the shape of a miss, only keys of one cache namespace share answers, a
hit is still admitted (rate limit, moderation), the ledger records hits, and Anthropic Messages
answers are cached too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from server.accounts.keys import KeyChanges
from tests.e2e.state_harness import StateHarness

CHAT_PATH = "/v1/chat/completions"
# A key the moderation policy below applies to (and no other key).
MODERATED_KEY = "key_cachemoderated"
MODERATION = f"""
accounts:
  moderation:
    - name: one-strict-key
      keys: [{MODERATED_KEY}]
      patterns: {{banned: "forbidden-word"}}
"""


@pytest.fixture(scope="module", params=["in_process", "grpc_hop"])
def harness(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StateHarness]:
    running = StateHarness(
        tmp_path_factory.mktemp(request.param), in_process=request.param == "in_process", extra=MODERATION
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture
def client(harness: StateHarness) -> openai.OpenAI:
    return openai.OpenAI(base_url=harness.base_url, api_key=harness.api_key, max_retries=0, timeout=20)


def sdk(harness: StateHarness, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=harness.base_url, api_key=secret, max_retries=0, timeout=20)


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


def test_keys_that_share_a_namespace_share_hits_and_no_other_key_does(
    harness: StateHarness, request: pytest.FixtureRequest
) -> None:
    _, first = harness.new_key(cache_namespace="team-x")
    _, second = harness.new_key(cache_namespace="team-x")
    elsewhere_id, elsewhere = harness.new_key(cache_namespace="team-y")
    own_id, own = harness.new_key()
    _, borrower = harness.new_key(cache_namespace=own_id)
    messages: Any = [{"role": "user", "content": unique("Shared within the team.", request)}]

    def ask(secret: str) -> str:
        raw = sdk(harness, secret).chat.completions.with_raw_response.create(
            model="gpt-cached", messages=messages, temperature=0
        )
        return raw.headers["x-siraya-cache"]  # type: ignore[no-any-return]

    before = chat_calls(harness)
    assert ask(first) == "miss"
    assert ask(second) == "hit"
    assert ask(elsewhere) == "miss"
    assert ask(own) == "miss"
    assert ask(harness.api_key) == "miss"
    assert ask(borrower) == "hit"  # a namespace named after a key's id is that key's own
    assert chat_calls(harness) == before + 4

    # Moving a key into the team's namespace applies at once; moving it back, too.
    keys = harness.running.gateway.keys  # type: ignore[union-attr]
    into = KeyChanges(frozenset({"cache_namespace"}), cache_namespace="team-x")
    harness.run(keys.update(elsewhere_id, into))
    assert ask(elsewhere) == "hit"
    harness.run(
        keys.update(elsewhere_id, KeyChanges(frozenset({"cache_namespace"}), cache_namespace="team-y"))
    )
    assert ask(elsewhere) == "hit"  # its own entry from before
    harness.run(keys.update(elsewhere_id, KeyChanges(frozenset({"cache_namespace"}))))
    assert ask(elsewhere) == "miss"  # its id is a namespace it never wrote to
    assert chat_calls(harness) == before + 5

    # A key of the namespace that may not use the model, or is revoked, is refused before any lookup.
    _, narrow = harness.new_key(cache_namespace="team-x", allowed_models=("gpt-chat",))
    with pytest.raises(openai.PermissionDeniedError):
        sdk(harness, narrow).chat.completions.create(model="gpt-cached", messages=messages, temperature=0)
    revoked_id, revoked = harness.new_key(cache_namespace="team-x")
    harness.run(keys.revoke(revoked_id))
    with pytest.raises(openai.AuthenticationError):
        sdk(harness, revoked).chat.completions.create(model="gpt-cached", messages=messages, temperature=0)
    assert chat_calls(harness) == before + 5


def test_hits_count_against_the_keys_rate_limit(
    harness: StateHarness, request: pytest.FixtureRequest
) -> None:
    _, secret = harness.new_key(rpm_limit=3)
    client = sdk(harness, secret)
    messages: Any = [{"role": "user", "content": unique("Rate me.", request)}]
    before = chat_calls(harness)
    seen = [
        client.chat.completions.with_raw_response.create(model="gpt-cached", messages=messages, temperature=0)
        for _ in range(3)
    ]
    assert [raw.headers["x-siraya-cache"] for raw in seen] == ["miss", "hit", "hit"]
    assert [raw.headers["x-ratelimit-remaining-requests"] for raw in seen] == ["2", "1", "0"]
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="gpt-cached", messages=messages, temperature=0)
    assert int(refused.value.response.headers["retry-after"]) > 0
    streamed = httpx.post(
        f"{harness.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json={"model": "gpt-cached", "messages": messages, "temperature": 0, "stream": True},
        timeout=20,
    )
    assert streamed.status_code == 429  # refused before the replay's first chunk
    assert chat_calls(harness) == before + 1


def test_a_hit_is_moderated_like_a_miss(harness: StateHarness, request: pytest.FixtureRequest) -> None:
    _, lenient = harness.new_key(cache_namespace="moderation-team")
    _, strict = harness.new_key(MODERATED_KEY, cache_namespace="moderation-team")
    flagged: Any = [{"role": "user", "content": unique("Say the forbidden-word.", request)}]
    clean: Any = [{"role": "user", "content": unique("Say something kind.", request)}]
    before = chat_calls(harness)
    for messages in (flagged, clean):
        sdk(harness, lenient).chat.completions.create(model="gpt-cached", messages=messages, temperature=0)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        sdk(harness, strict).chat.completions.create(model="gpt-cached", messages=flagged, temperature=0)
    assert refused.value.body["code"] == "content_flagged"  # type: ignore[index]
    raw = sdk(harness, strict).chat.completions.with_raw_response.create(
        model="gpt-cached", messages=clean, temperature=0
    )
    assert raw.headers["x-siraya-cache"] == "hit"
    assert chat_calls(harness) == before + 2


def post_message(harness: StateHarness, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{harness.base_url}/messages",
        headers={"x-api-key": harness.api_key, "anthropic-version": "2023-06-01"},
        json=body,
        timeout=20,
    )


@pytest.mark.parametrize("model", ["claude-cached", "gpt-cached"])
def test_messages_are_cached_keyed_by_the_body_as_written(
    harness: StateHarness, request: pytest.FixtureRequest, model: str
) -> None:
    upstream = harness.anthropic if model == "claude-cached" else harness.chat_only
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": 4096,
        "temperature": 0,
        "messages": [{"role": "user", "content": unique("Cache this message.", request)}],
    }
    before = len(upstream.requests)
    miss = post_message(harness, body)
    hit = post_message(harness, {**body, "metadata": {"user_id": "someone"}})
    assert miss.status_code == 200 and hit.status_code == 200, (miss.text, hit.text)
    assert miss.headers["x-siraya-cache"] == "miss" and hit.headers["x-siraya-cache"] == "hit"
    assert len(upstream.requests) == before + 1
    first, second = miss.json(), hit.json()
    assert second["content"] == first["content"] and second["id"] == first["id"]
    assert second["model"] == model and second["type"] == "message"
    assert first["usage"]["cost"] > 0 and second["usage"]["cost"] == 0
    # Two thinking budgets the chat translation folds into one effort are still two answers.
    low = {**body, "thinking": {"type": "enabled", "budget_tokens": 1024}}
    higher = {**body, "thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert post_message(harness, low).headers["x-siraya-cache"] == "miss"
    assert post_message(harness, higher).headers["x-siraya-cache"] == "miss"
    assert post_message(harness, low).headers["x-siraya-cache"] == "hit"
    assert len(upstream.requests) == before + 3


def message_events(harness: StateHarness, body: dict[str, Any]) -> tuple[dict[str, str], list[Any]]:
    with httpx.stream(
        "POST",
        f"{harness.base_url}/messages",
        headers={"x-api-key": harness.api_key, "anthropic-version": "2023-06-01"},
        json=body,
        timeout=20,
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line]
        headers = dict(response.headers)
    names = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    events = [orjson.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]
    assert names == [event["type"] for event in events]
    return headers, events


def test_a_streamed_message_hit_replays_the_events(
    harness: StateHarness, request: pytest.FixtureRequest
) -> None:
    body = {
        "model": "claude-cached",
        "max_tokens": 200,
        "temperature": 0,
        "stream": True,
        "messages": [{"role": "user", "content": unique("Stream this message please.", request)}],
    }
    before = len(harness.anthropic.requests)
    miss_headers, miss = message_events(harness, body)
    hit_headers, hit = message_events(harness, body)
    assert len(harness.anthropic.requests) == before + 1
    assert miss_headers["x-siraya-cache"] == "miss" and hit_headers["x-siraya-cache"] == "hit"
    assert hit[0]["type"] == "message_start" and hit[-1]["type"] == "message_stop"
    assert len(hit) > 3 and shape(hit) == shape(miss)
    assert miss[-2]["usage"]["cost"] > 0 and hit[-2]["usage"]["cost"] == 0
    # The unary answer to the same body is another shape, cached apart.
    assert post_message(harness, {**body, "stream": False}).headers["x-siraya-cache"] == "miss"


def response_events(harness: StateHarness, body: dict[str, Any]) -> tuple[dict[str, str], list[Any]]:
    with httpx.stream(
        "POST",
        f"{harness.base_url}/responses",
        headers={"Authorization": f"Bearer {harness.api_key}"},
        json=body,
        timeout=20,
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
        headers = dict(response.headers)
    return headers, [orjson.loads(line.removeprefix("data: ")) for line in lines]


def without_identity(value: Any) -> Any:
    """`shape`, less what each stored response has of its own: its id and creation time."""
    if isinstance(value, dict):
        return {
            key: without_identity(item)
            for key, item in value.items()
            if key not in ("id", "created_at", "cost")
        }
    if isinstance(value, list):
        return [without_identity(item) for item in value]
    return value


def test_a_streamed_responses_hit_has_the_shape_of_the_miss(
    client: openai.OpenAI, harness: StateHarness, request: pytest.FixtureRequest
) -> None:
    body = {"model": "gpt-cached", "input": unique("Stream a response.", request), "temperature": 0}
    before = chat_calls(harness)
    miss_headers, miss = response_events(harness, {**body, "stream": True})
    hit_headers, hit = response_events(harness, {**body, "stream": True})
    assert chat_calls(harness) == before + 1
    assert miss_headers["x-siraya-cache"] == "miss" and hit_headers["x-siraya-cache"] == "hit"
    assert hit[0]["type"] == "response.created" and hit[-1]["type"] == "response.completed"
    assert len(hit) > 3 and without_identity(hit) == without_identity(miss)
    first, second = miss[-1]["response"], hit[-1]["response"]
    assert first["usage"]["cost"] > 0 and second["usage"]["cost"] == 0
    assert second["id"] != first["id"]  # each is a stored response of its own
    assert (
        client.responses.retrieve(second["id"]).output_text
        == client.responses.retrieve(first["id"]).output_text
    )
