"""A gateway in this process for the operations tests: metrics, logs and traces.

Three fake upstreams: `fake` answers, `limited` always answers 429, and `flaky` fails on cue.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.loop_gateway import LoopGateway
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Fault

UPSTREAM_KEY = "sk-upstream-ops-secret-0123456789"

CONFIG = """
server:
  host: 127.0.0.1
  http_port: 0
  grpc_port: 0
  data_dir: {data_dir}
providers:
  fake:
    type: openai
    base_url: {fake}
    api_key: ${{FAKE_UPSTREAM_KEY}}
  limited:
    type: openai
    base_url: {limited}
    api_key: ${{FAKE_UPSTREAM_KEY}}
models:
  - id: gpt-test
    provider: fake
    upstream_model: gpt-4o-mini
    pricing: {{input_per_million: 1000, output_per_million: 2000}}
  - id: gpt-limited
    provider: limited
    upstream_model: gpt-4o-mini
  - id: gpt-fallback
    deployments:
      - {{provider: limited, upstream_model: gpt-4o-mini}}
      - {{provider: fake, upstream_model: gpt-4o-mini}}
"""

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


class OperationsHarness(LoopGateway):
    def __init__(self, tmp_dir: Path, *, in_process: bool) -> None:
        self.fake = FakeOpenAIUpstream(api_key=UPSTREAM_KEY)
        self.limited = FakeOpenAIUpstream(api_key=UPSTREAM_KEY)
        super().__init__(tmp_dir, in_process=in_process, upstreams=(self.fake, self.limited))
        self.key_id = ""

    async def _start(self) -> None:
        await self._start_upstreams()
        self.limited.inject(
            Fault(
                status=429,
                error_type="rate_limit_error",
                error_code="rate_limit_exceeded",
                headers={"retry-after": "0"},
                times=1_000_000,
            )
        )
        config = CONFIG.format(
            data_dir=self.tmp_dir / "data", fake=self.fake.base_url, limited=self.limited.base_url
        )
        record = await self._start_gateway(config, {"FAKE_UPSTREAM_KEY": UPSTREAM_KEY}, "ops")
        self.key_id = record.id

    def scrape(self) -> Series:
        text = httpx.get(self.root_url + "/metrics", timeout=10).text
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }


def delta(before: Series, after: Series, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)
