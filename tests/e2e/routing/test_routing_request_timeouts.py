"""A request's own first-token and idle timeouts (x-siraya-first-token-timeout,
x-siraya-idle-timeout), over HTTP through the OpenAI SDK and as gRPC metadata: they replace the
model's limits, surface as 408 unless a fallback serves, and end a stalled stream with an error
event once a chunk has been sent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import openai
import pytest

from siraya.router.v1 import chat_pb2, chat_pb2_grpc, common_pb2
from tests.e2e.routing_harness import UPSTREAM_KEY, RoutingHarness
from tests.fakes.openai_upstream import Fault

CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]
ALPHA_FIRST = {"provider": {"order": ["alpha", "beta"]}}
ALWAYS = 1000
FIRST_TOKEN = "x-siraya-first-token-timeout"
IDLE = "x-siraya-idle-timeout"


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[RoutingHarness]:
    harness = RoutingHarness(tmp_path).start()
    yield harness
    harness.stop()


@pytest.fixture
def client(gw: RoutingHarness) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0, timeout=20)


def stream(client: openai.OpenAI, model: str, headers: dict[str, str]) -> Any:
    return client.chat.completions.create(
        model=model,
        messages=HI,
        stream=True,
        extra_body=ALPHA_FIRST,
        extra_headers=headers,  # type: ignore[arg-type]
    )


def test_a_first_token_timeout_header_with_a_hanging_upstream_is_a_408(
    gw: RoutingHarness, client: openai.OpenAI
) -> None:
    # solo-alpha has no first-token limit of its own: without the header the hang would end in a 200.
    gw.alpha.inject(Fault(path=CHAT, hang=3, times=ALWAYS))
    with pytest.raises(openai.APIStatusError) as caught:
        list(stream(client, "solo-alpha", {FIRST_TOKEN: "0.3"}))
    assert caught.value.status_code == 408
    body = caught.value.response.json()["error"]
    assert (body["type"], body["code"]) == ("timeout_error", "request_timeout")
    assert "alpha/gpt-4o-mini (Provider 'alpha' sent no first token within 0.3s) x2" in body["message"]
    assert UPSTREAM_KEY not in caught.value.response.text
    assert gw.calls(gw.alpha) == 2, "a timeout is retried once on the same deployment, then given up"


def test_a_first_token_timeout_header_fails_over_to_a_healthy_deployment(
    gw: RoutingHarness, client: openai.OpenAI
) -> None:
    gw.alpha.inject(Fault(path=CHAT, hang=3, times=ALWAYS))
    chunks = list(stream(client, "duo", {FIRST_TOKEN: "0.3"}))
    assert chunks and {c.provider for c in chunks} == {"beta"}  # type: ignore[attr-defined]
    assert {c.model for c in chunks} == {"duo"}
    assert (gw.calls(gw.alpha), gw.calls(gw.beta)) == (2, 1)


def test_the_request_first_token_timeout_replaces_the_models(
    gw: RoutingHarness, client: openai.OpenAI
) -> None:
    # "timed" gives up on a first token after 0.4s; the request allows 5s, so alpha's 1s hang serves.
    gw.alpha.inject(Fault(path=CHAT, hang=1))
    chunks = list(stream(client, "timed", {FIRST_TOKEN: "5"}))
    assert chunks and {c.provider for c in chunks} == {"alpha"}  # type: ignore[attr-defined]
    assert (gw.calls(gw.alpha), gw.calls(gw.beta)) == (1, 0)


def test_an_idle_timeout_header_ends_a_slow_stream_with_an_error_event(
    gw: RoutingHarness, client: openai.OpenAI
) -> None:
    gw.alpha.chunk_delay = 0.8
    seen = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream(client, "duo", {IDLE: "0.2"}):
            seen.append(chunk)
    assert seen and {c.provider for c in seen} == {"alpha"}  # type: ignore[attr-defined]
    assert "stalled" in caught.value.message and "alpha" in caught.value.message
    assert UPSTREAM_KEY not in caught.value.message
    assert (gw.calls(gw.alpha), gw.calls(gw.beta)) == (1, 0), "no retry once a chunk reached the client"


def test_caller_timeouts_do_not_open_a_shared_breaker(gw: RoutingHarness, client: openai.OpenAI) -> None:
    # "guarded" opens its breaker after two failures; an impatient caller's timeouts are not failures.
    gw.alpha.inject(Fault(path=CHAT, hang=3, times=3))
    for _ in range(3):
        assert {c.provider for c in stream(client, "guarded", {FIRST_TOKEN: "0.2"})} == {"beta"}  # type: ignore[attr-defined]
    assert {c.provider for c in stream(client, "guarded", {})} == {"alpha"}  # type: ignore[attr-defined]
    dispatcher = gw.running.gateway.dispatcher  # type: ignore[union-attr]
    assert dispatcher.breakers.opened == 0


@pytest.mark.parametrize("header", [FIRST_TOKEN, IDLE])
@pytest.mark.parametrize("value", ["soon", "0", "-1", "inf"])
def test_an_invalid_timeout_header_is_a_400(client: openai.OpenAI, header: str, value: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="duo",
            messages=HI,
            extra_headers={header: value},  # type: ignore[arg-type]
        )
    body = caught.value.response.json()["error"]
    assert body["type"] == "invalid_request_error" and header in body["message"]


def test_grpc_callers_send_the_timeouts_as_metadata(gw: RoutingHarness) -> None:
    gw.alpha.inject(Fault(path=CHAT, hang=3, times=ALWAYS))
    params = chat_pb2.ChatCompletionParams(
        model="solo-alpha",
        messages=[chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER, text="hi")],
        routing=common_pb2.Routing(),
    )

    async def scenario() -> None:
        async with grpc.aio.insecure_channel(gw.grpc_target) as channel:
            stub = chat_pb2_grpc.ChatServiceStub(channel)
            metadata = (("authorization", f"Bearer {gw.api_key}"), (FIRST_TOKEN, "0.3"))
            call = stub.StreamChatCompletion(
                chat_pb2.StreamChatCompletionRequest(params=params), metadata=metadata
            )
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async for _ in call:
                    pass
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "timed out" in (caught.value.details() or "")

    asyncio.run(scenario())
