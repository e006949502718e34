"""A running gateway for prompt caching: cache prices, cache usage, and prompt-cache affinity.

- `claude-cached` on the fake Anthropic API and `gemini-cached` on the fake Gemini API, both with
  cache read and write prices, so a charge shows which price each token was billed at;
- `gpt-test` on the fake OpenAI-compatible server (Claude Code's non-Claude model);
- `gpt-sticky` and `gpt-spread`: the same three weighted deployments (providers east, west and
  north, all the one OpenAI-compatible fake, told apart by the `provider` the gateway stamps), the
  first with `prompt_cache_affinity: true`, the second without;
- `gpt-to-claude`: a model on a port nobody listens on, for fallbacks to `claude-cached`.
The key the harness makes has a credit limit, so its credit use can be read back.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import httpx

from server.accounts.keys import NewKey
from tests.e2e.loop_gateway import LoopGateway
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.gemini_upstream import FakeGeminiUpstream
from tests.fakes.openai_upstream import FakeOpenAIUpstream

ANTHROPIC_KEY = "sk-ant-api03-caching-e2e-0123456789"
OPENAI_KEY = "sk-openai-caching-e2e-0123456789"
GEMINI_KEY = "AIzaSy-caching-e2e-0123456789"
CLAUDE_UPSTREAM_MODEL = "claude-sonnet-4-5-20250929"
CREDIT_LIMIT = 100.0
# USD per million tokens.
CLAUDE_PRICES = {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75}
GEMINI_PRICES = {"input": 1.0, "output": 2.0, "cache_read": 0.25}
STICKY_PROVIDERS = ("east", "west", "north")

CONFIG = """
server:
  host: 127.0.0.1
  http_port: 0
  grpc_port: 0
  data_dir: {data_dir}
  max_body_bytes: 4194304
accounts:
  ledger_flush_interval: 0.05
providers:
  anthropic:
    type: anthropic
    base_url: {anthropic_url}
    api_key: ${{ANTHROPIC_KEY}}
    read_timeout: 20
  openai:
    type: openai
    base_url: {openai_url}
    api_key: ${{OPENAI_KEY}}
    read_timeout: 20
  google:
    type: gemini
    base_url: {gemini_url}
    api_key: ${{GEMINI_KEY}}
    read_timeout: 20
{sticky_providers}
  dead:
    type: openai
    base_url: http://127.0.0.1:{dead_port}/v1
    api_key: ${{OPENAI_KEY}}
    connect_timeout: 2
models:
  - id: claude-cached
    provider: anthropic
    upstream_model: {claude_model}
    pricing:
      input_per_million: {claude[input]}
      output_per_million: {claude[output]}
      cache_read_per_million: {claude[cache_read]}
      cache_write_per_million: {claude[cache_write]}
  - id: gemini-cached
    provider: google
    upstream_model: gemini-2.5-flash
    pricing:
      input_per_million: {gemini[input]}
      output_per_million: {gemini[output]}
      cache_read_per_million: {gemini[cache_read]}
  - id: gpt-test
    provider: openai
    upstream_model: gpt-4o-mini
    pricing: free
  - id: gpt-sticky
    prompt_cache_affinity: true
    prompt_cache_affinity_ttl: 600
    pricing: free
    deployments:
{sticky_deployments}
  - id: gpt-spread
    pricing: free
    deployments:
{sticky_deployments}
  - id: gpt-to-claude
    provider: dead
    pricing: free
routing:
  breaker: {{enabled: false}}
"""


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CachingGatewayHarness(LoopGateway):
    """Owns a loop thread running the three fake upstreams and the gateway."""

    def __init__(self, tmp_dir: Path, *, in_process: bool) -> None:
        self.anthropic = FakeAnthropicUpstream(api_key=ANTHROPIC_KEY)
        self.openai = FakeOpenAIUpstream(api_key=OPENAI_KEY, native_responses=False)
        self.gemini = FakeGeminiUpstream(api_key=GEMINI_KEY)
        super().__init__(tmp_dir, in_process=in_process, upstreams=(self.anthropic, self.openai, self.gemini))

    async def _start(self) -> None:
        await self._start_upstreams()
        sticky_providers = "".join(
            f"  {name}:\n    type: openai\n    base_url: {self.openai.base_url}\n"
            f"    api_key: ${{OPENAI_KEY}}\n"
            for name in STICKY_PROVIDERS
        )
        sticky_deployments = "".join(
            f"      - {{provider: {name}, upstream_model: gpt-4o-mini}}\n" for name in STICKY_PROVIDERS
        ).rstrip("\n")
        config = CONFIG.format(
            data_dir=self.tmp_dir / "data",
            anthropic_url=self.anthropic.base_url,
            openai_url=self.openai.base_url,
            gemini_url=self.gemini.base_url,
            sticky_providers=sticky_providers.rstrip("\n"),
            sticky_deployments=sticky_deployments,
            dead_port=_unused_port(),
            claude_model=CLAUDE_UPSTREAM_MODEL,
            claude=CLAUDE_PRICES,
            gemini=GEMINI_PRICES,
        )
        env = {"ANTHROPIC_KEY": ANTHROPIC_KEY, "OPENAI_KEY": OPENAI_KEY, "GEMINI_KEY": GEMINI_KEY}
        await self._start_gateway(config, env, "caching-e2e")
        assert self.running is not None
        # The key the tests use has a credit limit, so every charge moves its balance.
        _, self.api_key = await self.running.gateway.keys.create(
            NewKey(name="caching-credit", credit_limit=CREDIT_LIMIT)
        )

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def credit_used(self) -> float:
        response = httpx.get(f"{self.base_url}/key", headers=self.auth(), timeout=20)
        assert response.status_code == 200, response.text
        return float(response.json()["data"]["credit_used"])

    def generation(self, request_id: str, wait: float = 10.0) -> dict[str, Any]:
        """The ledger record of one request (GET /v1/generation), once the batch writer has it."""
        deadline = time.monotonic() + wait
        while True:
            response = httpx.get(
                f"{self.base_url}/generation", params={"id": request_id}, headers=self.auth(), timeout=20
            )
            if response.status_code != 404 or time.monotonic() > deadline:
                assert response.status_code == 200, response.text
                return response.json()["data"]  # type: ignore[no-any-return]
            time.sleep(0.05)
