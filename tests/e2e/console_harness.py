"""A gateway with accounts and an admin key in front of two fake OpenAI upstreams ("alpha" and
"beta") that serve the same models: for the usage API, the console and its browser tests.

`duo` has both as deployments; a request that asks for `provider.order: [alpha, beta]` while alpha
fails shows a fallback waterfall (no retries, so each deployment is tried once).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai

from server.accounts.keys import NewKey
from tests.e2e.loop_gateway import LoopGateway
from tests.fakes.openai_upstream import FakeOpenAIUpstream

UPSTREAM_KEY = "sk-upstream-console-0123456789"
ADMIN_KEY = "sk-admin-console-secret-24680"
ALPHA_FIRST = {"provider": {"order": ["alpha", "beta"]}}

CONFIG = """
server:
  host: 127.0.0.1
  http_port: 0
  grpc_port: 0
  data_dir: {data_dir}
  admin_key: {admin_key}
accounts:
  ledger_flush_interval: 0.05
  key_cache_ttl: 0.2
routing:
  retry: {{max_attempts: 1}}
providers:
  alpha: {{base_url: "{alpha}", api_key: "{key}"}}
  beta: {{base_url: "{beta}", api_key: "{key}"}}
models:
  - id: duo
    owned_by: siraya
    context_window: 128000
    pricing: {{input_per_million: 2, output_per_million: 4}}
    deployments:
      - {{provider: alpha, upstream_model: gpt-4o-mini}}
      - {{provider: beta, upstream_model: gpt-4o-mini}}
  - id: solo-alpha
    provider: alpha
    upstream_model: gpt-4o-mini
    pricing: {{input_per_million: 1, output_per_million: 2}}
  - id: solo-beta
    provider: beta
    upstream_model: gpt-4o-mini
    pricing: {{input_per_million: 1, output_per_million: 2}}
  - id: guarded
    breaker: {{consecutive_failures: 1, cooldown: 600}}
    deployments:
      - {{provider: alpha, upstream_model: gpt-guarded}}
{extra_models}"""


class ConsoleHarness(LoopGateway):
    """Two fakes and a gateway with an admin key on a loop thread."""

    def __init__(
        self, tmp_dir: Path, *, extra_models: str = "", extra_config: str = "", in_process: bool = True
    ) -> None:
        """`extra_config`: top-level YAML sections added after the models (`ui:`, `observability:`)."""
        self.alpha = FakeOpenAIUpstream(api_key=UPSTREAM_KEY)
        self.beta = FakeOpenAIUpstream(api_key=UPSTREAM_KEY)
        self.extra_models = extra_models
        self.extra_config = extra_config
        super().__init__(tmp_dir, in_process=in_process, upstreams=(self.alpha, self.beta))

    async def _start(self) -> None:
        await self._start_upstreams()
        config = CONFIG.format(
            data_dir=self.tmp_dir / "data",
            admin_key=ADMIN_KEY,
            alpha=self.alpha.base_url,
            beta=self.beta.base_url,
            key=UPSTREAM_KEY,
            extra_models=self.extra_models,
        )
        await self._start_gateway(config + self.extra_config, {}, "console-tests")

    def new_key(self, name: str = "app", **settings: Any) -> tuple[str, str]:
        """(key id, secret) of a fresh key."""
        assert self.running is not None
        record, secret = self.run(self.running.gateway.keys.create(NewKey(name=name, **settings)))
        return record.id, secret

    def client(self, secret: str) -> openai.OpenAI:
        return openai.OpenAI(api_key=secret, base_url=self.base_url, max_retries=0)

    def get(self, path: str, secret: str = ADMIN_KEY, **params: Any) -> httpx.Response:
        return httpx.get(
            self.base_url + path, params=params, headers={"Authorization": f"Bearer {secret}"}, timeout=10
        )
