"""Two gateway processes on one Postgres and one Redis share the response cache: an answer one of
them got from the upstream is a hit on the other."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.process_harness import GatewayProcess, UpstreamLoop
from tests.unit.server.accounts.accounts_backends import (
    REDIS_URL,
    delete_prefix,
    postgres_unavailable,
    redis_unavailable,
    run_sync,
    temporary_database,
)

CONFIG = """
server:
  host: 127.0.0.1
  http_port: 0
  grpc_port: 0
  data_dir: {data_dir}
accounts:
  database_url: {database_url}
  redis_url: {redis_url}
cache:
  redis_prefix: "{prefix}"
providers:
  fake:
    type: openai
    base_url: {upstream}
    api_key: ${{FAKE_UPSTREAM_KEY}}
    native_responses: false
models:
  - id: gpt-cached
    provider: fake
    upstream_model: gpt-4o-mini
    cache: {{ttl: 300}}
"""


@pytest.fixture
def upstreams() -> Iterator[UpstreamLoop]:
    reason = postgres_unavailable() or redis_unavailable()
    if reason:
        pytest.skip(reason)
    loop = UpstreamLoop()
    yield loop
    loop.close()


def test_two_gateway_processes_share_hits_through_redis(tmp_path: Path, upstreams: UpstreamLoop) -> None:
    upstream = upstreams.start_upstream(native_responses=False)
    prefix = f"siraya-test-cache-{secrets.token_hex(4)}:"
    gateways: list[GatewayProcess] = []
    with temporary_database() as dsn:
        try:
            for name in ("a", "b"):
                directory = tmp_path / name
                directory.mkdir()
                text = CONFIG.format(
                    data_dir=directory / "data",
                    database_url=dsn,
                    redis_url=REDIS_URL,
                    prefix=prefix,
                    upstream=upstream.base_url,
                )
                gateways.append(GatewayProcess(directory, text))
            key = gateways[0].create_key()
            for gateway in gateways:
                gateway.start()
            body = {
                "model": "gpt-cached",
                "messages": [{"role": "user", "content": "Shared between replicas."}],
                "temperature": 0,
            }
            headers = {"Authorization": f"Bearer {key}"}
            answers = []
            for gateway in gateways:
                reply = httpx.post(
                    f"{gateway.base_url}/v1/chat/completions", headers=headers, json=body, timeout=30
                )
                assert reply.status_code == 200, reply.text
                answers.append(reply)
            assert [reply.headers["x-siraya-cache"] for reply in answers] == ["miss", "hit"]
            assert len(upstream.requests_to("/v1/chat/completions")) == 1
            first, second = (reply.json() for reply in answers)
            assert second["choices"] == first["choices"]
        finally:
            for gateway in gateways:
                gateway.kill()
            run_sync(lambda: delete_prefix(prefix))
