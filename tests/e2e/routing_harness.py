"""A gateway in front of two fake OpenAI upstreams ("alpha" and "beta") serving the same models,
for the routing and resilience suite. Each test gets fresh breakers and latency stats."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from server.accounts.keys import NewKey
from server.app import RunningGateway, start_gateway
from server.config import load_config
from tests.fakes.openai_upstream import FakeOpenAIUpstream

T = TypeVar("T")
UPSTREAM_KEY = "sk-upstream-routing-0123456789"

CONFIG = """
server:
  host: 127.0.0.1
  http_port: 0
  grpc_port: 0
  data_dir: {data_dir}
routing:
{redis}  retry: {{max_attempts: 2, base_delay: 0.05, max_delay: 0.1, max_retry_after: 2}}
  breaker: {{consecutive_failures: 50}}
providers:
  alpha: {{base_url: "{alpha}", api_key: "{key}"}}
  beta: {{base_url: "{beta}", api_key: "{key}"}}
models:
  - id: duo
    aliases: [duo-latest]
    owned_by: siraya
    created: 1700000000
    pricing: {{input_per_million: 1.5, output_per_million: 2.5}}
    context_window: 128000
    deployments:
      - {{provider: alpha, upstream_model: "{model}", weight: 3}}
      - provider: beta
        upstream_model: "{model}"
        pricing: {{input_per_million: 0.5, output_per_million: 1}}
        supported_parameters: [temperature, max_tokens]
  - {{id: solo-alpha, provider: alpha, upstream_model: "{model}"}}
  - {{id: solo-beta, provider: beta, upstream_model: "{model}"}}
  - id: timed
    retry: {{max_attempts: 1}}
    timeouts: {{first_token: 0.4, idle: 0.4, total: 3}}
    deployments:
      - {{provider: alpha, upstream_model: "{model}"}}
      - {{provider: beta, upstream_model: "{model}"}}
  - id: guarded
    retry: {{max_attempts: 1}}
    breaker: {{consecutive_failures: 2, cooldown: 1.0}}
    deployments:
      - {{provider: alpha, upstream_model: "{model}-guarded"}}
      - {{provider: beta, upstream_model: "{model}-guarded"}}
  - id: hedged
    hedging: {{enabled: true, delay: 0.2}}
    pricing: {{input_per_million: 1000000, output_per_million: 1000000}}
    deployments:
      - {{provider: alpha, upstream_model: "{model}"}}
      - {{provider: beta, upstream_model: "{model}"}}
  - id: embed-duo
    kind: embedding
    deployments:
      - {{provider: alpha, upstream_model: text-embedding-3-small}}
      - {{provider: beta, upstream_model: text-embedding-3-small}}
"""


class RoutingHarness:
    """Two fakes and a gateway on a loop thread. `upstream_model` names the fakes' model, so that
    gateways that share Redis breakers can share (or not) deployment keys."""

    def __init__(
        self,
        tmp_dir: Path,
        *,
        redis_url: str | None = None,
        upstream_model: str = "gpt-4o-mini",
        upstreams: tuple[FakeOpenAIUpstream, FakeOpenAIUpstream] | None = None,
        in_process: bool = True,
    ) -> None:
        self.tmp_dir = tmp_dir
        self.in_process = in_process
        self.redis_url = redis_url
        self.upstream_model = upstream_model
        self._own_upstreams = upstreams is None
        self.alpha, self.beta = upstreams or (
            FakeOpenAIUpstream(api_key=UPSTREAM_KEY),
            FakeOpenAIUpstream(api_key=UPSTREAM_KEY),
        )
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.running: RunningGateway | None = None
        self.api_key = ""

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> RoutingHarness:
        self._thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        if self._own_upstreams:
            await self.alpha.start()
            await self.beta.start()
        path = self.tmp_dir / "routing.yaml"
        path.write_text(
            CONFIG.format(
                data_dir=self.tmp_dir / "data",
                alpha=self.alpha.base_url,
                beta=self.beta.base_url,
                key=UPSTREAM_KEY,
                model=self.upstream_model,
                redis=f'  redis_url: "{self.redis_url}"\n' if self.redis_url else "",
            )
        )
        self.running = await start_gateway(load_config(path, {}), in_process=self.in_process)
        _, self.api_key = await self.running.gateway.keys.create(NewKey(name="routing-tests"))

    @property
    def grpc_target(self) -> str:
        assert self.running is not None
        return f"127.0.0.1:{self.running.grpc_port}"

    @property
    def base_url(self) -> str:
        assert self.running is not None
        return f"http://127.0.0.1:{self.running.http_port}/v1"

    def calls(self, upstream: FakeOpenAIUpstream, path: str = "/v1/chat/completions") -> int:
        return len(upstream.requests_to(path))

    def stop(self) -> None:
        async def _stop() -> None:
            if self.running is not None:
                await self.running.stop()
            if self._own_upstreams:
                await self.alpha.stop()
                await self.beta.stop()

        self.run(_stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
