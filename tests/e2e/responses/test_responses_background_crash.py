"""A gateway killed (SIGKILL) while a background response runs: after a restart the response reads as
failed with an error the client can read, and the credits it held are back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.process_harness import GatewayProcess, UpstreamLoop
from tests.fakes.openai_upstream.control import Fault

CONFIG = """
server:
  host: 127.0.0.1
  http_port: 0
  grpc_port: 0
  data_dir: {data_dir}
providers:
  fake:
    type: openai
    base_url: {upstream}
    api_key: ${{FAKE_UPSTREAM_KEY}}
    native_responses: false
    read_timeout: 120
models:
  - id: gpt-slow
    provider: fake
    upstream_model: gpt-4o-mini
    pricing: {{input_per_million: 1000, output_per_million: 1000}}
responses:
  background_lease_seconds: 0.2
"""


@pytest.fixture
def upstreams() -> Iterator[UpstreamLoop]:
    loop = UpstreamLoop()
    yield loop
    loop.close()


def poll(url: str, headers: dict[str, str], done: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(url, headers=headers, timeout=5).json()
        if done(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def test_a_background_response_orphaned_by_a_killed_gateway_fails_and_refunds(
    tmp_path: Path, upstreams: UpstreamLoop
) -> None:
    upstream = upstreams.start_upstream(native_responses=False)
    upstream.inject(Fault(path="/v1/chat/completions", hang=120))
    gateway = GatewayProcess(tmp_path, CONFIG.format(data_dir=tmp_path / "data", upstream=upstream.base_url))
    key = gateway.cli("keys", "create", "--name", "crash", "--credit-limit", "10").strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {key}"}
    gateway.start()
    try:
        created = httpx.post(
            f"{gateway.base_url}/v1/responses",
            headers=headers,
            json={"model": "gpt-slow", "input": "A long story, please.", "background": True},
            timeout=10,
        )
        assert created.status_code == 200, created.text
        response_id = created.json()["id"]
        url = f"{gateway.base_url}/v1/responses/{response_id}"
        running = poll(url, headers, lambda body: body["status"] == "in_progress")
        assert running["status"] == "in_progress"
        held = httpx.get(f"{gateway.base_url}/v1/key", headers=headers).json()["data"]
        assert held["reserved"] > 0, held
        gateway.kill()

        gateway.start()
        url = f"{gateway.base_url}/v1/responses/{response_id}"
        failed = poll(url, headers, lambda body: body["status"] not in ("queued", "in_progress"))
        assert failed["status"] == "failed", failed
        assert failed["error"]["code"] == "server_error"
        assert "stopped" in failed["error"]["message"]
        balance = httpx.get(f"{gateway.base_url}/v1/key", headers=headers).json()["data"]
        assert balance["reserved"] == 0 and balance["usage"] == 0, balance
        assert balance["limit_remaining"] == pytest.approx(10.0)
    finally:
        gateway.kill()
