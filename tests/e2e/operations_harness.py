"""A gateway in this process for the operations tests: metrics, logs and traces.

Three fake upstreams: `fake` answers, `limited` always answers 429, and `flaky` fails on cue.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from server.accounts.keys import NewKey
from server.app import RunningGateway, start_gateway
from server.config import load_config
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Fault

T = TypeVar("T")
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


class OperationsHarness:
    def __init__(self, tmp_dir: Path, *, in_process: bool) -> None:
        self.tmp_dir = tmp_dir
        self.in_process = in_process
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.fake = FakeOpenAIUpstream(api_key=UPSTREAM_KEY)
        self.limited = FakeOpenAIUpstream(api_key=UPSTREAM_KEY)
        self.running: RunningGateway | None = None
        self.api_key = ""
        self.key_id = ""

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> OperationsHarness:
        self._thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        await self.fake.start()
        await self.limited.start()
        self.limited.inject(
            Fault(
                status=429,
                error_type="rate_limit_error",
                error_code="rate_limit_exceeded",
                headers={"retry-after": "0"},
                times=1_000_000,
            )
        )
        path = self.tmp_dir / "siraya.yaml"
        path.write_text(
            CONFIG.format(
                data_dir=self.tmp_dir / "data", fake=self.fake.base_url, limited=self.limited.base_url
            )
        )
        self.running = await start_gateway(
            load_config(path, {"FAKE_UPSTREAM_KEY": UPSTREAM_KEY}), in_process=self.in_process
        )
        record, self.api_key = await _maybe_await(self.running.gateway.keys.create(NewKey(name="ops")))
        self.key_id = record.id

    @property
    def url(self) -> str:
        assert self.running is not None
        return f"http://127.0.0.1:{self.running.http_port}"

    def scrape(self) -> Series:
        text = httpx.get(self.url + "/metrics", timeout=10).text
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def stop(self) -> None:
        async def _stop() -> None:
            if self.running is not None:
                await self.running.stop()
            await self.fake.stop()
            await self.limited.stop()

        self.run(_stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


async def _maybe_await(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


def delta(before: Series, after: Series, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)
