"""OpenAI's legacy completions (`POST /v1/completions`) through the official `openai` SDK, against a
model on each upstream (OpenAI-compatible, Anthropic, Gemini), in both modes.

The gateway answers it through its chat pipeline (the prompt becomes one user message), so every
upstream serves it; the bodies are OpenAI's CreateCompletionResponse, streamed or not.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest

from server import tokens
from tests.e2e.clients_harness import UPSTREAMS, ClientsGatewayHarness, UpstreamUnderTest
from tests.fakes.openai_upstream import Fault
from tests.openapi_schema import assert_matches_schema

LONG_PROMPT = " ".join(f"word{i}" for i in range(30))


@pytest.fixture(params=UPSTREAMS)
def upstream(request: pytest.FixtureRequest, clients_gateway: ClientsGatewayHarness) -> UpstreamUnderTest:
    return clients_gateway.upstream(request.param)


def reply_to(upstream: UpstreamUnderTest, prompt: str) -> str:
    """What the upstream's fake answers a lone user message with."""
    if upstream.name == "anthropic":
        return f"Hello from claude-sonnet-4-5-20250929! You said: {prompt}"
    return f"echo: {prompt}"


def sdk(gateway: ClientsGatewayHarness) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=gateway.api_key, max_retries=0, timeout=20)


def post(gateway: ClientsGatewayHarness, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{gateway.base_url}/completions",
        headers={"Authorization": f"Bearer {gateway.api_key if key is None else key}"},
        json=body,
        timeout=20,
    )


def sse_chunks(gateway: ClientsGatewayHarness, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The `data:` events of a streamed completion, checked for OpenAI's framing ([DONE] last)."""
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/completions",
        headers={"Authorization": f"Bearer {gateway.api_key}"},
        json={**body, "stream": True},
        timeout=20,
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    chunks = []
    for event in events[:-2]:
        assert event.startswith("data: ")
        chunks.append(json.loads(event[len("data: ") :]))
    return chunks


def assert_chunk_matches_schema(chunk: dict[str, Any]) -> None:
    """A streamed chunk is a CreateCompletionResponse ("both the streamed and non-streamed response
    objects share the same shape"), except that, as OpenAI's own stream does, a choice that has not
    finished says `finish_reason: null`, which the published schema does not spell out."""
    finished = {
        **chunk,
        "choices": [
            {**choice, "finish_reason": choice["finish_reason"] or "stop"} for choice in chunk["choices"]
        ],
    }
    assert_matches_schema(finished, "CreateCompletionResponse")


def upstream_max_tokens(upstream: UpstreamUnderTest) -> Any:
    body = upstream.generations()[-1]
    if upstream.name == "gemini":
        return body["generationConfig"]["maxOutputTokens"]
    return body["max_tokens"]


def generation(gateway: ClientsGatewayHarness, request_id: str) -> dict[str, Any]:
    """The ledger record of a request (GET /v1/generation), waiting for the batched write."""
    deadline = time.monotonic() + 10
    while True:
        response = httpx.get(
            f"{gateway.base_url}/generation",
            params={"id": request_id},
            headers={"Authorization": f"Bearer {gateway.api_key}"},
        )
        if response.status_code != 404 or time.monotonic() > deadline:
            assert response.status_code == 200, response.text
            return response.json()["data"]  # type: ignore[no-any-return]
        time.sleep(0.05)


# --- unary ------------------------------------------------------------------------------------


def test_unary_completion(clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest) -> None:
    raw = sdk(clients_gateway).completions.with_raw_response.create(
        model=upstream.chat_model, prompt="Say hello", max_tokens=50
    )
    body = json.loads(raw.content)
    assert_matches_schema(body, "CreateCompletionResponse")
    completion = raw.parse()
    assert completion.object == "text_completion"
    assert completion.id.startswith("cmpl-")
    assert completion.model == upstream.chat_model
    [choice] = completion.choices
    assert choice.index == 0 and choice.finish_reason == "stop" and choice.logprobs is None
    assert choice.text == reply_to(upstream, "Say hello")
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert raw.headers["x-siraya-provider"] == body["provider"]
    assert upstream_max_tokens(upstream) == 50
    # Metered and written to the ledger as a chat request is.
    record = generation(clients_gateway, raw.headers["x-request-id"])
    assert record["status"] == "success" and record["streamed"] is False
    assert (record["tokens_prompt"], record["tokens_completion"]) == (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
    )


def test_max_tokens_defaults_to_16(
    clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest
) -> None:
    completion = sdk(clients_gateway).completions.create(model=upstream.chat_model, prompt=LONG_PROMPT)
    assert upstream_max_tokens(upstream) == 16
    [choice] = completion.choices
    assert choice.finish_reason == "length"
    assert choice.text == " ".join(reply_to(upstream, LONG_PROMPT).split()[:16])


def test_prompt_array_gives_one_choice_per_prompt(
    clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest
) -> None:
    raw = post(clients_gateway, {"model": upstream.chat_model, "prompt": ["first one", "second one"]})
    assert raw.status_code == 200, raw.text
    body = raw.json()
    assert_matches_schema(body, "CreateCompletionResponse")
    assert [(c["index"], c["text"]) for c in body["choices"]] == [
        (0, reply_to(upstream, "first one")),
        (1, reply_to(upstream, "second one")),
    ]
    # One usage for the request: the sum of both prompts' (each was metered on its own).
    first = generation(clients_gateway, raw.headers["x-request-id"])
    second = generation(clients_gateway, raw.headers["x-request-id"] + "-1")
    usage = body["usage"]
    assert usage["prompt_tokens"] == first["tokens_prompt"] + second["tokens_prompt"]
    assert usage["completion_tokens"] == first["tokens_completion"] + second["tokens_completion"]


def test_n_with_a_prompt_array_orders_choices_as_openai(clients_gateway: ClientsGatewayHarness) -> None:
    """Choices of prompt i are indices i*n .. i*n+n-1."""
    completion = sdk(clients_gateway).completions.create(model="gpt-test", prompt=["a b", "c d"], n=2)
    assert [(c.index, c.text) for c in completion.choices] == [
        (0, "echo: a b"),
        (1, "echo: a b"),
        (2, "echo: c d"),
        (3, "echo: c d"),
    ]


def test_echo_and_token_id_prompt(
    clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest
) -> None:
    client = sdk(clients_gateway)
    echoed = client.completions.create(model=upstream.chat_model, prompt="Echo me", echo=True)
    assert echoed.choices[0].text == "Echo me" + reply_to(upstream, "Echo me")
    ids = tokens.encoding().encode("Tokens in")
    from_ids = client.completions.create(model=upstream.chat_model, prompt=ids)
    assert from_ids.choices[0].text == reply_to(upstream, "Tokens in")
    from_lists = client.completions.create(model=upstream.chat_model, prompt=[ids, ids])
    assert [c.text for c in from_lists.choices] == [reply_to(upstream, "Tokens in")] * 2


def test_sampling_parameters_reach_the_upstream(clients_gateway: ClientsGatewayHarness) -> None:
    upstream = clients_gateway.upstream("openai")
    sdk(clients_gateway).completions.create(
        model="gpt-test",
        prompt="params",
        max_tokens=20,
        temperature=0.3,
        top_p=0.9,
        stop=["\n\n", "END"],
        seed=11,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        logit_bias={"50256": -100},
        user="user-7",
        logprobs=2,
        best_of=1,
    )
    sent = upstream.generations()[-1]
    assert sent["messages"] == [{"role": "user", "content": "params"}]
    expected = {
        "max_tokens": 20,
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": ["\n\n", "END"],
        "seed": 11,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "logit_bias": {"50256": -100},
        "user": "user-7",
        "logprobs": True,
        "top_logprobs": 2,
    }
    assert {key: sent.get(key) for key in expected} == expected
    assert "best_of" not in sent and "echo" not in sent


# --- streamed ---------------------------------------------------------------------------------


def test_stream_with_usage(clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest) -> None:
    stream = sdk(clients_gateway).completions.create(
        model=upstream.chat_model,
        prompt="Stream hello",
        max_tokens=50,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == reply_to(upstream, "Stream hello")
    assert {c.object for c in chunks} == {"text_completion"}
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("cmpl-")
    assert {c.model for c in chunks} == {upstream.chat_model}
    finished = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finished == ["stop"]
    final = chunks[-1]
    assert final.choices == [] and final.usage is not None
    assert final.usage.completion_tokens > 0
    assert final.usage.total_tokens == final.usage.prompt_tokens + final.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])
    assert upstream.last_generation_streamed()


def test_stream_wire_format(clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest) -> None:
    chunks = sse_chunks(
        clients_gateway,
        {"model": upstream.chat_model, "prompt": "wire check", "stream_options": {"include_usage": True}},
    )
    for chunk in chunks:
        assert_chunk_matches_schema(chunk)
    assert chunks[-1]["choices"] == [] and "cost" in chunks[-1]["usage"]
    assert all("usage" not in chunk for chunk in chunks[:-1])


def test_stream_without_usage_echo_and_prompts(
    clients_gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest
) -> None:
    chunks = sse_chunks(
        clients_gateway, {"model": upstream.chat_model, "prompt": ["one", "two"], "echo": True}
    )
    for chunk in chunks:
        assert_chunk_matches_schema(chunk)
        assert "usage" not in chunk
    texts: dict[int, str] = {}
    reasons: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            texts[choice["index"]] = texts.get(choice["index"], "") + choice["text"]
            if choice["finish_reason"]:
                reasons[choice["index"]] = choice["finish_reason"]
    assert texts == {0: "one" + reply_to(upstream, "one"), 1: "two" + reply_to(upstream, "two")}
    assert reasons == {0: "stop", 1: "stop"}
    assert len({chunk["id"] for chunk in chunks}) == 1


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"suffix": "after"}, "suffix"),
        ({"best_of": 3}, "best_of"),
        ({"logprobs": 6}, "logprobs"),
        ({"prompt": None}, "prompt"),
        ({"prompt": [1, "two"]}, "prompt[1]"),
        ({"prompt": [[100257000]]}, "prompt"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"stream": True, "best_of": 2, "n": 1}, "best_of"),
    ],
    ids=[
        "suffix",
        "best_of",
        "logprobs-range",
        "no-prompt",
        "mixed-prompt",
        "bad-token",
        "max-tokens",
        "temp",
        "best_of-stream",
    ],
)
def test_bad_requests_are_400_in_openai_shape(
    clients_gateway: ClientsGatewayHarness, body: dict[str, Any], param: str
) -> None:
    response = post(clients_gateway, {"model": "gpt-test", "prompt": "x", **body})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert_matches_schema(response.json(), "ErrorResponse")


def test_provider_limits_are_400_naming_the_parameter(clients_gateway: ClientsGatewayHarness) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(clients_gateway).completions.create(model="claude-sonnet", prompt="x", logprobs=1)
    assert caught.value.body["param"] == "logprobs"  # type: ignore[index]
    assert caught.value.body["code"] == "unsupported_parameter"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(clients_gateway).completions.create(model="claude-sonnet", prompt="x", n=2)
    assert caught.value.body["param"] == "n"  # type: ignore[index]


def test_auth_and_model_errors(clients_gateway: ClientsGatewayHarness) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        sdk(clients_gateway).completions.create(model="no-such-model", prompt="x")
    assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]
    unauthenticated = post(clients_gateway, {"model": "gpt-test", "prompt": "x"}, key="sk-wrong")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["code"] == "invalid_api_key"
    # A bad body from a caller without a valid key hears 401 first, as on every keyed path.
    refused = post(clients_gateway, {"model": "gpt-test", "prompt": "x", "suffix": "y"}, key="sk-wrong")
    assert refused.status_code == 401


def test_stream_error_before_the_first_chunk_is_a_real_status(clients_gateway: ClientsGatewayHarness) -> None:
    with pytest.raises(openai.NotFoundError):
        list(sdk(clients_gateway).completions.create(model="no-such-model", prompt="x", stream=True))


def test_upstream_failures_before_and_after_the_first_chunk(clients_gateway: ClientsGatewayHarness) -> None:
    fake = clients_gateway.openai
    fake.inject(Fault(path="/v1/chat/completions", status=503))
    refused = post(clients_gateway, {"model": "gpt-test", "prompt": "x", "stream": True})
    assert refused.status_code == 502 and refused.json()["error"]["code"] == "provider_error"
    fake.inject(Fault(path="/v1/chat/completions", reset_after_chunks=3))
    stream = sdk(clients_gateway).completions.create(
        model="gpt-test", prompt="one two three four five six", stream=True
    )
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk)
    assert received and received[0].object == "text_completion"
