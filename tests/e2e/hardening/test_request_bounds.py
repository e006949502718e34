"""Field bounds OpenAI documents (issue #20, defect 6): a 400 naming the field, over REST and over gRPC.

Each case is refused before any upstream sees it; the edges of each range are accepted.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2

from siraya.router.v1 import chat_pb2, chat_pb2_grpc, embeddings_pb2, embeddings_pb2_grpc
from tests.e2e.harness import GatewayHarness

CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
RESPONSE = {"model": "gpt-test", "input": "hi"}
EMBEDDING = {"model": "embed-test", "input": "hi"}

OUT_OF_BOUNDS: list[tuple[str, dict[str, Any], str, str]] = [
    ("/v1/chat/completions", {**CHAT, "temperature": -1}, "temperature", "decimal_below_min_value"),
    ("/v1/chat/completions", {**CHAT, "temperature": 2.5}, "temperature", "decimal_above_max_value"),
    ("/v1/chat/completions", {**CHAT, "top_p": 1.5}, "top_p", "decimal_above_max_value"),
    (
        "/v1/chat/completions",
        {**CHAT, "presence_penalty": -2.5},
        "presence_penalty",
        "decimal_below_min_value",
    ),
    (
        "/v1/chat/completions",
        {**CHAT, "frequency_penalty": 3},
        "frequency_penalty",
        "decimal_above_max_value",
    ),
    ("/v1/chat/completions", {**CHAT, "n": 1000}, "n", "integer_above_max_value"),
    ("/v1/chat/completions", {**CHAT, "n": 0}, "n", "integer_below_min_value"),
    ("/v1/chat/completions", {**CHAT, "max_tokens": 0}, "max_tokens", "integer_below_min_value"),
    ("/v1/chat/completions", {**CHAT, "max_tokens": -1}, "max_tokens", "integer_below_min_value"),
    ("/v1/chat/completions", {**CHAT, "max_tokens": 2**31 - 1}, "max_tokens", "integer_above_max_value"),
    (
        "/v1/chat/completions",
        {**CHAT, "max_completion_tokens": -5},
        "max_completion_tokens",
        "integer_below_min_value",
    ),
    ("/v1/chat/completions", {**CHAT, "top_logprobs": 21}, "top_logprobs", "integer_above_max_value"),
    (
        "/v1/chat/completions",
        {**CHAT, "logit_bias": {"50256": 101}},
        "logit_bias.50256",
        "integer_above_max_value",
    ),
    (
        "/v1/chat/completions",
        {**CHAT, "logit_bias": {str(i): 1 for i in range(1025)}},
        "logit_bias",
        "array_above_max_length",
    ),
    (
        "/v1/chat/completions",
        {**CHAT, "stream": True, "temperature": 9},
        "temperature",
        "decimal_above_max_value",
    ),
    ("/v1/responses", {**RESPONSE, "temperature": 2.01}, "temperature", "decimal_above_max_value"),
    ("/v1/responses", {**RESPONSE, "top_p": -0.1}, "top_p", "decimal_below_min_value"),
    ("/v1/responses", {**RESPONSE, "max_output_tokens": 0}, "max_output_tokens", "integer_below_min_value"),
    ("/v1/responses", {**RESPONSE, "max_output_tokens": -1}, "max_output_tokens", "integer_below_min_value"),
    ("/v1/responses", {**RESPONSE, "top_logprobs": 25}, "top_logprobs", "integer_above_max_value"),
    (
        "/v1/responses",
        {**RESPONSE, "stream": True, "max_output_tokens": 2**30},
        "max_output_tokens",
        "integer_above_max_value",
    ),
    ("/v1/embeddings", {**EMBEDDING, "dimensions": 19_417_038}, "dimensions", "integer_above_max_value"),
]


@pytest.mark.parametrize(
    ("path", "body", "param", "code"), OUT_OF_BOUNDS, ids=[f"{c[0]}-{c[2]}-{c[3]}" for c in OUT_OF_BOUNDS]
)
def test_an_out_of_bounds_field_is_a_400_naming_it_before_any_upstream_call(
    harness: GatewayHarness, path: str, body: dict[str, Any], param: str, code: str
) -> None:
    before = len(harness.native.requests)
    reply = httpx.post(
        harness.base_url + path.removeprefix("/v1"),
        json=body,
        headers={"Authorization": f"Bearer {harness.api_key}"},
        timeout=20,
    )
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert len(harness.native.requests) == before


@pytest.mark.parametrize("max_tokens", [0, -1])
def test_a_messages_max_tokens_below_one_is_a_400_naming_it(harness: GatewayHarness, max_tokens: int) -> None:
    before = len(harness.native.requests)
    reply = httpx.post(
        harness.base_url + "/messages",
        json={"model": "gpt-test", "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": harness.api_key, "anthropic-version": "2023-06-01"},
        timeout=20,
    )
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"].startswith("max_tokens:")
    assert len(harness.native.requests) == before


def test_the_edges_of_each_range_are_accepted(harness: GatewayHarness) -> None:
    headers = {"Authorization": f"Bearer {harness.api_key}"}
    edges = [
        ("/v1/chat/completions", {**CHAT, "temperature": 2, "top_p": 0, "presence_penalty": -2}),
        (
            "/v1/chat/completions",
            {**CHAT, "frequency_penalty": 2, "max_tokens": 1, "logit_bias": {"1": -100}},
        ),
        (
            "/v1/chat/completions",
            {**CHAT, "temperature": 0, "top_p": 1, "logprobs": True, "top_logprobs": 20},
        ),
        ("/v1/responses", {**RESPONSE, "temperature": 0, "top_p": 1, "max_output_tokens": 16}),
        ("/v1/embeddings", {**EMBEDDING, "dimensions": 3072}),
    ]
    for path, body in edges:
        reply = httpx.post(
            harness.base_url + path.removeprefix("/v1"), json=body, headers=headers, timeout=20
        )
        assert reply.status_code == 200, (body, reply.text)


def _field_violation(error: grpc.aio.AioRpcError) -> tuple[str, str]:
    status = status_pb2.Status.FromString(dict(error.trailing_metadata())["grpc-status-details-bin"])
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    return info.metadata["param"], info.metadata["code"]


def test_grpc_callers_meet_the_same_bounds(harness: GatewayHarness) -> None:
    async def scenario() -> None:
        auth = (("authorization", f"Bearer {harness.api_key}"),)
        message = chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER, text="hi")
        async with grpc.aio.insecure_channel(harness.grpc_target) as channel:
            chat = chat_pb2_grpc.ChatServiceStub(channel)
            for params, param in (
                (
                    chat_pb2.ChatCompletionParams(model="gpt-test", messages=[message], temperature=-1),
                    "temperature",
                ),
                (chat_pb2.ChatCompletionParams(model="gpt-test", messages=[message], n=1000), "n"),
                (
                    chat_pb2.ChatCompletionParams(
                        model="gpt-test", messages=[message], logit_bias={"7": -101}
                    ),
                    "logit_bias.7",
                ),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await chat.CreateChatCompletion(
                        chat_pb2.CreateChatCompletionRequest(params=params), metadata=auth
                    )
                assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert _field_violation(refused.value)[0] == param
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    async for _ in chat.StreamChatCompletion(
                        chat_pb2.StreamChatCompletionRequest(params=params), metadata=auth
                    ):
                        pass
                assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            embeddings = embeddings_pb2_grpc.EmbeddingsServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await embeddings.CreateEmbedding(
                    embeddings_pb2.CreateEmbeddingRequest(
                        params=embeddings_pb2.EmbeddingParams(
                            model="embed-test", text="hi", dimensions=19_417_038
                        )
                    ),
                    metadata=auth,
                )
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert _field_violation(refused.value) == ("dimensions", "integer_above_max_value")

    asyncio.run(scenario())
