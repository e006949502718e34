"""`serve --workers 2`: both processes serve, metrics add up across them, a killed worker comes back."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.supervisor import free_port
from tests.e2e.process_harness import GatewayProcess, UpstreamLoop

CONFIG = """
server:
  host: 127.0.0.1
  data_dir: {data_dir}
providers:
  fake:
    type: openai
    base_url: {url}
    api_key: ${{FAKE_UPSTREAM_KEY}}
models:
  - {{id: gpt-test, provider: fake, upstream_model: gpt-4o-mini}}
"""


@pytest.fixture
def upstreams() -> Iterator[UpstreamLoop]:
    loop = UpstreamLoop()
    yield loop
    loop.close()


def _children(pid: int) -> set[int]:
    return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def _served_total(base_url: str) -> float:
    # A fresh connection each time, so the kernel may hand it to either worker.
    text = httpx.get(base_url + "/metrics", timeout=10, headers={"Connection": "close"}).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "siraya_requests_total"
        and sample.labels.get("model") == "gpt-test"
        and sample.labels.get("status_class") == "2xx"
    )


def _chat(base_url: str, key: str, count: int) -> None:
    for _ in range(count):
        reply = httpx.post(
            base_url + "/v1/chat/completions",
            timeout=30,
            json={"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {key}", "Connection": "close"},
        )
        assert reply.status_code == 200, reply.text


def _serving_pids(gateway: GatewayProcess) -> set[int]:
    lines = [json.loads(line) for line in gateway.stderr().splitlines() if line.startswith("{")]
    return {int(line["pid"]) for line in lines if line.get("msg") == "request" and line.get("status") == 200}


def _wait_for(condition: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise TimeoutError("condition not met")


def test_two_workers_share_the_ports_add_up_their_metrics_and_come_back_when_killed(
    tmp_path: Path, upstreams: UpstreamLoop
) -> None:
    upstream = upstreams.start_upstream()
    http_port, grpc_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    gateway = GatewayProcess(
        tmp_path,
        CONFIG.format(data_dir=tmp_path / "data", url=upstream.base_url),
        "--workers",
        "2",
        "--port",
        str(http_port),
        "--grpc-port",
        str(grpc_port),
    )
    key = gateway.create_key()
    gateway.start(http_port=http_port)
    assert gateway.process is not None
    try:
        _wait_for(lambda: len(_children(gateway.process.pid)) == 2)  # type: ignore[union-attr]
        workers = _children(gateway.process.pid)
        # Both must be listening before the kernel spreads connections over them.
        _wait_for(lambda: all(f"started (pid {pid})" in gateway.stdout() for pid in workers))
        # Both workers serve requests: each one's pid shows up on access lines.
        _wait_for(lambda: (_chat(gateway.base_url, key, 4), _serving_pids(gateway) == workers)[1], timeout=60)
        total = _served_total(gateway.base_url)
        assert total >= 4
        # Whichever worker answers the scrape, it reports every worker's requests.
        assert {_served_total(gateway.base_url) for _ in range(6)} == {total}

        victim = sorted(workers)[0]
        os.kill(victim, signal.SIGKILL)
        _wait_for(lambda: len(_children(gateway.process.pid) - {victim}) == 2)  # type: ignore[union-attr]
        replacement = (_children(gateway.process.pid) - workers).pop()  # type: ignore[union-attr]
        _wait_for(
            lambda: (_chat(gateway.base_url, key, 2), replacement in _serving_pids(gateway))[1], timeout=60
        )
        # The dead worker's requests still count.
        assert _served_total(gateway.base_url) >= total + 2

        gateway.send(signal.SIGTERM)
        assert gateway.wait(60) == 0
    finally:
        if gateway.process is not None:
            for pid in _children_or_empty(gateway.process.pid):
                os.kill(pid, signal.SIGKILL)
        gateway.kill()


def _children_or_empty(pid: int) -> set[int]:
    try:
        return _children(pid)
    except OSError:
        return set()
