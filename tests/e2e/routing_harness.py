"""A gateway in front of two fake OpenAI upstreams ("alpha" and "beta") serving the same models,
for the routing and resilience suite. Each test gets fresh breakers and latency stats."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.loop_gateway import LoopGateway
from tests.fakes.openai_upstream import FakeOpenAIUpstream

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
  - {{id: solo-alpha, provider: alpha, upstream_model: "{model}",
      pricing: {{input_per_million: 1000000, output_per_million: 1000000}}}}
  - id: solo-beta
    pricing: {{input_per_million: 3000000, output_per_million: 3000000}}
    deployments:
      - {{provider: beta, upstream_model: "{model}"}}
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


class RoutingHarness(LoopGateway):
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
        self.redis_url = redis_url
        self.upstream_model = upstream_model
        self.alpha, self.beta = upstreams or (
            FakeOpenAIUpstream(api_key=UPSTREAM_KEY),
            FakeOpenAIUpstream(api_key=UPSTREAM_KEY),
        )
        # Upstreams passed in belong to the caller, which starts and stops them.
        owned = (self.alpha, self.beta) if upstreams is None else ()
        super().__init__(tmp_dir, in_process=in_process, upstreams=owned)

    async def _start(self) -> None:
        await self._start_upstreams()
        config = CONFIG.format(
            data_dir=self.tmp_dir / "data",
            alpha=self.alpha.base_url,
            beta=self.beta.base_url,
            key=UPSTREAM_KEY,
            model=self.upstream_model,
            redis=f'  redis_url: "{self.redis_url}"\n' if self.redis_url else "",
        )
        await self._start_gateway(config, {}, "routing-tests", file_name="routing.yaml")

    def calls(self, upstream: FakeOpenAIUpstream, path: str = "/v1/chat/completions") -> int:
        return len(upstream.requests_to(path))
