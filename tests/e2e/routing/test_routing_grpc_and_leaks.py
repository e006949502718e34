"""Routing over gRPC (the Routing message and deadlines), the per-request timeout header, and a leak
check: many requests with random faults and random client disconnects leave nothing behind."""

from __future__ import annotations

import asyncio
import random
import time
import types
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import openai
import pytest

from siraya.router.v1 import chat_pb2, chat_pb2_grpc, common_pb2
from tests.e2e.routing_harness import RoutingHarness
from tests.fakes.openai_upstream import Fault

CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[RoutingHarness]:
    harness = RoutingHarness(tmp_path).start()
    yield harness
    harness.stop()


def grpc_params(model: str, routing: common_pb2.Routing) -> chat_pb2.ChatCompletionParams:
    return chat_pb2.ChatCompletionParams(
        model=model, messages=[chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER, text="hi")], routing=routing
    )


def test_routing_over_grpc_falls_back_and_names_the_provider(gw: RoutingHarness) -> None:
    gw.alpha.inject(Fault(path=CHAT, status=500, times=1000))

    async def scenario() -> None:
        async with grpc.aio.insecure_channel(gw.grpc_target) as channel:
            stub = chat_pb2_grpc.ChatServiceStub(channel)
            auth = (("authorization", f"Bearer {gw.api_key}"),)
            routing = common_pb2.Routing(models=["solo-beta"])
            reply = await stub.CreateChatCompletion(
                chat_pb2.CreateChatCompletionRequest(params=grpc_params("solo-alpha", routing)), metadata=auth
            )
            assert (reply.completion.model, reply.completion.provider) == ("solo-beta", "beta")
            stream = stub.StreamChatCompletion(
                chat_pb2.StreamChatCompletionRequest(
                    params=grpc_params(
                        "duo", common_pb2.Routing(provider=common_pb2.ProviderPreferences(only=["beta"]))
                    )
                ),
                metadata=auth,
            )
            assert {reply.chunk.provider async for reply in stream} == {"beta"}
            gw.beta.inject(Fault(path=CHAT, hang=3))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.CreateChatCompletion(
                    chat_pb2.CreateChatCompletionRequest(
                        params=grpc_params("solo-beta", common_pb2.Routing())
                    ),
                    metadata=auth,
                    timeout=0.5,
                )
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    asyncio.run(scenario())


def test_the_timeout_header_bounds_a_request(gw: RoutingHarness) -> None:
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    client.chat.completions.create(model="solo-alpha", messages=HI)  # warm up: no first-call costs below
    gw.alpha.inject(Fault(path=CHAT, hang=3))
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model="solo-alpha",
            messages=HI,
            extra_headers={"x-siraya-timeout": "0.5"},  # type: ignore[arg-type]
        )
    assert caught.value.status_code == 408 and time.monotonic() - started < 2.5
    assert caught.value.response.json()["error"]["code"] == "request_timeout"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="solo-alpha",
            messages=HI,
            extra_headers={"x-siraya-timeout": "soon"},  # type: ignore[arg-type]
        )


def test_the_bridge_over_the_grpc_hop_keeps_failover_headers_and_timeouts(tmp_path: Path) -> None:
    hop = RoutingHarness(tmp_path, in_process=False).start()
    try:
        client = openai.OpenAI(base_url=hop.base_url, api_key=hop.api_key, max_retries=0)
        hop.alpha.inject(Fault(path=CHAT, status=500, times=1000))
        raw = client.chat.completions.with_raw_response.create(
            model="duo", messages=HI, stream=True, extra_body={"provider": {"order": ["alpha", "beta"]}}
        )
        assert raw.headers["x-siraya-provider"] == "beta"
        assert {chunk.provider for chunk in raw.parse()} == {"beta"}  # type: ignore[attr-defined]
        hop.alpha._faults.clear()
        hop.alpha.inject(Fault(path=CHAT, hang=3))
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(
                model="solo-alpha",
                messages=HI,
                extra_headers={"x-siraya-timeout": "0.5"},  # type: ignore[arg-type]
            )
        assert caught.value.status_code == 408
    finally:
        hop.stop()


FAULTS = [
    None,
    Fault(path=CHAT, status=500),
    Fault(path=CHAT, status=429, headers={"Retry-After": "0"}),
    Fault(path=CHAT, garbage=True),
    Fault(path=CHAT, reset_after_chunks=1),
    Fault(path=CHAT, cut_before_done=True),
    Fault(path=CHAT, hang=0.6),
]


def busy_tasks() -> int:
    """Python tasks on the gateway's loop, less the fakes' idle keep-alive handlers (bounded by the
    pool); grpc's own Cython tasks are left out, their number varies with its polling."""
    return sum(
        1
        for task in asyncio.all_tasks()
        if type(task.get_coro()) is types.CoroutineType
        and getattr(task.get_coro(), "__qualname__", "") != "RequestHandler.start"
    )


def test_random_faults_and_disconnects_leave_no_connections_or_tasks(gw: RoutingHarness) -> None:
    rng = random.Random(7)
    assert gw.running is not None
    gateway = gw.running.gateway

    async def baseline_tasks() -> int:
        return busy_tasks()

    # One request first, so that lazily started background tasks (metering's sweeper) count in the baseline.
    httpx.post(
        f"{gw.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {gw.api_key}"},
        json={"model": "duo", "messages": HI},
    ).raise_for_status()
    before = gw.run(baseline_tasks())

    async def one(client: httpx.AsyncClient, index: int) -> None:
        fault = rng.choice(FAULTS)
        if fault is not None:
            rng.choice((gw.alpha, gw.beta)).inject(fault)
        stream = rng.random() < 0.6
        body = {"model": rng.choice(("duo", "timed", "hedged", "guarded")), "messages": HI, "stream": stream}
        request = client.post("/chat/completions", json=body)
        if rng.random() < 0.3:  # a client that goes away mid-request
            task = asyncio.ensure_future(request)
            await asyncio.sleep(rng.uniform(0, 0.05))
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return
        response = await request
        assert response.status_code in (200, 408, 429, 502), response.text

    async def drive() -> None:
        async with httpx.AsyncClient(
            base_url=gw.base_url, headers={"Authorization": f"Bearer {gw.api_key}"}, timeout=20
        ) as client:
            for start in range(0, 1000, 25):
                await asyncio.gather(*(one(client, i) for i in range(start, start + 25)))

    asyncio.run(drive())
    for fake in (gw.alpha, gw.beta):
        fake._faults.clear()

    async def settled() -> tuple[int, int, int]:
        for _ in range(100):
            acquired = sum(
                provider._http.session.in_use  # type: ignore[attr-defined]
                for provider in gateway.providers.values()
                if getattr(getattr(provider, "_http", None), "session", None) is not None
            )
            tasks = busy_tasks()
            streams = gw.alpha.active_streams + gw.beta.active_streams
            if acquired == 0 and tasks <= before and streams == 0:
                break
            await asyncio.sleep(0.05)
        return acquired, tasks, streams

    acquired, tasks, streams = gw.run(settled())
    assert acquired == 0, "upstream connections still checked out"
    assert streams == 0, "an upstream stream is still open"

    async def names() -> list[str]:
        return sorted(
            repr(task.get_coro()) for task in asyncio.all_tasks() if hasattr(task.get_coro(), "cr_code")
        )

    assert tasks <= before, f"{tasks - before} tasks left running: {gw.run(names())}"
    assert gateway.dispatcher.counters.requests >= 200
    key = httpx.get(f"{gw.base_url}/key", headers={"Authorization": f"Bearer {gw.api_key}"}).json()["data"]
    assert key["reserved"] == 0.0, "a credit reservation outlived its request"
