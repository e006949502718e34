"""SIGHUP reloads the configuration under open streams; a broken file is refused and changes nothing."""

from __future__ import annotations

import json
import signal
import threading
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
providers:
  one:
    type: openai
    base_url: {one}
    api_key: ${{FAKE_UPSTREAM_KEY}}
    headers: {{x-fake-chunk-delay: "0.3"}}
  two:
    type: openai
    base_url: {two}
    api_key: ${{FAKE_UPSTREAM_KEY}}
models:
  - {{id: switching, provider: {serving}, upstream_model: gpt-4o-mini}}
"""


# About ten seconds of stream at 0.3 s a chunk: long enough to stay open across the reload.
WORDS = " ".join(f"w{i}" for i in range(30))


@pytest.fixture
def upstreams() -> Iterator[UpstreamLoop]:
    loop = UpstreamLoop()
    yield loop
    loop.close()


def _provider_now(gateway: GatewayProcess, key: str) -> str:
    reply = httpx.post(
        gateway.base_url + "/v1/chat/completions",
        timeout=30,
        json={"model": "switching", "messages": [{"role": "user", "content": "who"}]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["provider"])


def _wait_for(condition: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise TimeoutError("condition not met")


def test_sighup_moves_new_requests_while_open_streams_finish_on_the_old_config(
    tmp_path: Path, upstreams: UpstreamLoop
) -> None:
    one, two = upstreams.start_upstream(), upstreams.start_upstream()

    def config(serving: str) -> str:
        return CONFIG.format(data_dir=tmp_path / "data", one=one.base_url, two=two.base_url, serving=serving)

    gateway = GatewayProcess(tmp_path, config("one"))
    key = gateway.create_key()
    gateway.start()
    try:
        assert _provider_now(gateway, key) == "one"
        first_chunk = threading.Event()
        payloads: list[str] = []

        def consume() -> None:
            with httpx.stream(
                "POST",
                gateway.base_url + "/v1/chat/completions",
                timeout=60,
                json={"model": "switching", "stream": True, "messages": [{"role": "user", "content": WORDS}]},
                headers={"Authorization": f"Bearer {key}"},
            ) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data: "):
                        payloads.append(line[6:])
                        first_chunk.set()

        reader = threading.Thread(target=consume)
        reader.start()
        assert first_chunk.wait(20)
        gateway.config_path.write_text(config("two"))
        gateway.send(signal.SIGHUP)
        _wait_for(lambda: _provider_now(gateway, key) == "two")
        assert reader.is_alive(), "the stream should still be open after the reload"
        reader.join(30)
        assert payloads[-1] == "[DONE]"
        chunks = [json.loads(p) for p in payloads[:-1]]
        assert {chunk["provider"] for chunk in chunks} == {"one"}
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        assert text == "echo: " + WORDS

        gateway.config_path.write_text(config("two") + "bogus: true\n")
        gateway.send(signal.SIGHUP)
        _wait_for(lambda: "reload refused" in gateway.stderr())
        assert "bogus: unknown field" in gateway.stderr()
        assert _provider_now(gateway, key) == "two"
        gateway.send(signal.SIGTERM)
        assert gateway.wait(30) == 0
    finally:
        gateway.kill()
