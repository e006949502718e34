"""SIGTERM drains: open streams finish, new requests are refused, the process exits 0."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.process_harness import GatewayProcess, UpstreamLoop

CONFIG = """
server:
  host: 127.0.0.1
  http_port: 0
  grpc_port: 0
  data_dir: {data_dir}
  drain_seconds: {drain_seconds}
providers:
  slow:
    type: openai
    base_url: {url}
    api_key: ${{FAKE_UPSTREAM_KEY}}
    headers: {{x-fake-chunk-delay: "{delay}"}}
models:
  - {{id: slow-model, provider: slow, upstream_model: gpt-4o-mini}}
accounts:
  # Far longer than the test: only the drain's final flush can write the ledger.
  ledger_flush_interval: 3600
"""


@pytest.fixture
def upstreams() -> Iterator[UpstreamLoop]:
    loop = UpstreamLoop()
    yield loop
    loop.close()


def _gateway(
    tmp_path: Path, upstreams: UpstreamLoop, *, drain_seconds: float, delay: float
) -> GatewayProcess:
    upstream = upstreams.start_upstream()
    config = CONFIG.format(
        data_dir=tmp_path / "data", drain_seconds=drain_seconds, url=upstream.base_url, delay=delay
    )
    return GatewayProcess(tmp_path, config)


async def _stream(client: httpx.AsyncClient, key: str, words: int, started: asyncio.Event) -> list[str]:
    """Every `data:` payload of one streamed chat completion; sets `started` at the first."""
    body = {
        "model": "slow-model",
        "stream": True,
        "messages": [{"role": "user", "content": " ".join(["word"] * words)}],
    }
    payloads: list[str] = []
    headers = {"Authorization": f"Bearer {key}"}
    async with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                payloads.append(line[len("data: ") :])
                started.set()
    return payloads


def test_sigterm_lets_twenty_open_streams_finish_and_refuses_new_requests(
    tmp_path: Path, upstreams: UpstreamLoop
) -> None:
    gateway = _gateway(tmp_path, upstreams, drain_seconds=30, delay=0.25)
    key = gateway.create_key()
    gateway.start()
    try:

        async def scenario() -> tuple[list[list[str]], httpx.Response]:
            limits = httpx.Limits(max_connections=40)
            async with httpx.AsyncClient(base_url=gateway.base_url, timeout=60, limits=limits) as client:
                started = [asyncio.Event() for _ in range(20)]
                streams = [asyncio.create_task(_stream(client, key, 8, event)) for event in started]
                await asyncio.wait_for(asyncio.gather(*(event.wait() for event in started)), 30)
                gateway.send(signal.SIGTERM)
                async with httpx.AsyncClient(base_url=gateway.base_url, timeout=10) as fresh:
                    for _ in range(100):
                        if (await fresh.get("/health/ready")).status_code == 503:
                            break
                        await asyncio.sleep(0.05)
                    else:
                        raise AssertionError("readiness never turned false")
                    refused = await fresh.post(
                        "/v1/chat/completions",
                        json={"model": "slow-model", "messages": [{"role": "user", "content": "late"}]},
                        headers={"Authorization": f"Bearer {key}"},
                    )
                return await asyncio.gather(*streams), refused

        results, refused = asyncio.run(scenario())
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "server_shutting_down"
        for payloads in results:
            assert payloads[-1] == "[DONE]"
            chunks = [json.loads(p) for p in payloads[:-1]]
            assert not any("error" in chunk for chunk in chunks)
            text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
            assert text == "echo: " + " ".join(["word"] * 8)
        assert gateway.wait(30) == 0
        # Every stream was logged (and so settled) before the process exited.
        lines = [json.loads(line) for line in gateway.stderr().splitlines() if line.startswith("{")]
        served = [line for line in lines if line.get("msg") == "request" and line.get("status") == 200]
        assert len(served) == 20
        assert all(line["model"] == "slow-model" and line["provider"] == "slow" for line in served)
        with sqlite3.connect(tmp_path / "data" / "siraya.db") as db:
            (ledgered,) = db.execute(
                "SELECT count(*) FROM usage_ledger WHERE model_requested = 'slow-model' AND http_status = 200"
            ).fetchone()
        assert ledgered == 20
    finally:
        gateway.kill()


def test_streams_still_open_when_the_grace_ends_get_a_final_error_event(
    tmp_path: Path, upstreams: UpstreamLoop
) -> None:
    gateway = _gateway(tmp_path, upstreams, drain_seconds=1, delay=1.0)
    key = gateway.create_key()
    gateway.start()
    try:

        async def scenario() -> list[list[str]]:
            async with httpx.AsyncClient(base_url=gateway.base_url, timeout=60) as client:
                started = [asyncio.Event() for _ in range(2)]
                streams = [asyncio.create_task(_stream(client, key, 40, event)) for event in started]
                await asyncio.wait_for(asyncio.gather(*(event.wait() for event in started)), 30)
                gateway.send(signal.SIGTERM)
                return await asyncio.gather(*streams)

        began = time.monotonic()
        results = asyncio.run(scenario())
        for payloads in results:
            final = json.loads(payloads[-1])
            assert final["error"]["code"] == "server_shutting_down"
            assert final["error"]["type"] == "service_unavailable_error"
            assert "[DONE]" not in payloads
        assert gateway.wait(30) == 0
        # Far less than the 40 s the streams would have taken.
        assert time.monotonic() - began < 20
    finally:
        gateway.kill()
