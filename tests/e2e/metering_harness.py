"""One gateway with priced models on each upstream protocol (OpenAI, Anthropic, Gemini), for metering tests.

Every model costs $1 per million prompt tokens and $2 per million completion tokens, so a test can
compute what a request must cost from the tokens the fake upstream reported.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import openai
from prometheus_client.parser import text_string_to_metric_families

from server.accounts.keys import NewKey
from tests.e2e.loop_gateway import LoopGateway
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.gemini_upstream import FakeGeminiUpstream
from tests.fakes.openai_upstream import FakeOpenAIUpstream

OPENAI_KEY = "sk-upstream-metering-0123456789"
ANTHROPIC_KEY = "sk-ant-api03-metering-0123456789abcdef"
GEMINI_KEY = "AIzaSy-metering-gemini-0123456789"
INPUT_PER_MILLION = 1.0
OUTPUT_PER_MILLION = 2.0

CONFIG = """
server: {{host: 127.0.0.1, http_port: 0, grpc_port: 0, data_dir: {data_dir}}}
accounts: {{ledger_flush_interval: 0.05, key_cache_ttl: 0.5}}
providers:
  openai:
    type: openai
    base_url: {openai_url}
    api_key: {openai_key}
    native_responses: true
  openai-chat:
    type: openai
    base_url: {openai_url}
    api_key: {openai_key}
    native_responses: false
  anthropic: {{type: anthropic, base_url: {anthropic_url}, api_key: {anthropic_key}, read_timeout: 5}}
  google: {{type: gemini, base_url: {gemini_url}, api_key: {gemini_key}, read_timeout: 5}}
models:
  - {{id: gpt-priced, provider: openai, upstream_model: gpt-4o-mini, pricing: {price}}}
  - {{id: gpt-via-chat, provider: openai-chat, upstream_model: gpt-4o-mini, pricing: {price}}}
  - {{id: claude-priced, provider: anthropic, upstream_model: claude-sonnet-4-5, pricing: {price}}}
  - {{id: gemini-priced, provider: google, upstream_model: gemini-2.5-flash, pricing: {price}}}
  - {{id: gpt-embed, provider: openai, upstream_model: text-embedding-3-small, kind: embedding,
      pricing: {price}}}
  - {{id: gemini-embed, provider: google, upstream_model: gemini-embedding-001, kind: embedding,
      pricing: {price}}}
routing:
  breaker: {{enabled: false}}
"""


# The provider each chat model is served by, as the metrics label it.
PROVIDERS = {"gpt-priced": "openai", "claude-priced": "anthropic", "gemini-priced": "google"}
Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def cost_of(prompt_tokens: int, completion_tokens: int) -> float:
    """What the ledger must charge for these tokens at the harness's prices."""
    return (prompt_tokens * INPUT_PER_MILLION + completion_tokens * OUTPUT_PER_MILLION) / 1_000_000


class MeteringHarness(LoopGateway):
    """The three fake upstreams and one gateway in front of them, on a loop thread."""

    def __init__(self, tmp_dir: Path, *, in_process: bool) -> None:
        self.openai = FakeOpenAIUpstream(api_key=OPENAI_KEY, native_responses=True)
        self.anthropic = FakeAnthropicUpstream(api_key=ANTHROPIC_KEY)
        self.gemini = FakeGeminiUpstream(api_key=GEMINI_KEY)
        super().__init__(tmp_dir, in_process=in_process, upstreams=(self.openai, self.anthropic, self.gemini))

    async def _start(self) -> None:
        await self._start_upstreams()
        price = f"{{input_per_million: {INPUT_PER_MILLION}, output_per_million: {OUTPUT_PER_MILLION}}}"
        config = CONFIG.format(
            data_dir=self.tmp_dir / "data",
            openai_url=self.openai.base_url,
            openai_key=OPENAI_KEY,
            anthropic_url=self.anthropic.base_url,
            anthropic_key=ANTHROPIC_KEY,
            gemini_url=self.gemini.base_url,
            gemini_key=GEMINI_KEY,
            price=price,
        )
        await self._start_gateway(config, {}, "metering")

    def new_key(self, credit_limit: float = 1.0) -> str:
        """A fresh key with a credit limit, so that each test reads its own charges."""
        assert self.running is not None
        _, secret = self.run(
            self.running.gateway.keys.create(NewKey(name="metered", credit_limit=credit_limit))
        )
        return secret

    def sdk(self, secret: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key=secret, max_retries=0, timeout=20)

    def set_stream_delay(self, seconds: float) -> None:
        """Seconds between the events of every fake's streams (0: as fast as possible)."""
        self.openai.chunk_delay = seconds
        self.anthropic.event_delay = seconds
        self.gemini.event_delay = seconds

    def scrape(self) -> Series:
        """Every sample of GET /metrics."""
        text = httpx.get(self.root_url + "/metrics", timeout=10).text
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def metric_delta(self, before: Series, name: str, **labels: str) -> float:
        """How much a counter grew since `before`, waiting a little for a request's metrics to land
        (they are recorded as its handler returns, just after the client read the last byte)."""
        key = (name, frozenset(labels.items()))
        deadline = time.monotonic() + 5
        while True:
            grown = self.scrape().get(key, 0.0) - before.get(key, 0.0)
            if grown or time.monotonic() > deadline:
                return grown
            time.sleep(0.05)

    def key_data(self, secret: str) -> dict[str, Any]:
        response = httpx.get(f"{self.base_url}/key", headers={"Authorization": f"Bearer {secret}"})
        assert response.status_code == 200, response.text
        return response.json()["data"]  # type: ignore[no-any-return]
