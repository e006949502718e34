"""A running gateway in front of the fake Anthropic upstream, on a background event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from server.accounts.keys import NewKey
from server.app import RunningGateway, start_gateway
from server.config import load_config
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream

T = TypeVar("T")
ANTHROPIC_KEY = "sk-ant-api03-e2e-secret-0123456789abcdef"
UPSTREAM_MODEL = "claude-sonnet-4-5-20250929"

CONFIG_TEMPLATE = """
server:
  host: 127.0.0.1
  http_port: 0
  grpc_port: 0
  data_dir: {data_dir}
providers:
  anthropic:
    type: anthropic
    base_url: {base_url}
    api_key: ${{ANTHROPIC_KEY}}
    read_timeout: 5
models:
  - id: claude-sonnet
    provider: anthropic
    upstream_model: {upstream_model}
    kind: chat
  - id: claude-embed
    provider: anthropic
    upstream_model: {upstream_model}
    kind: embedding
routing:
  # These tests inject upstream faults on purpose; a breaker opening would hide the next mapping.
  breaker: {{enabled: false}}
"""


class AnthropicGatewayHarness:
    """Owns a loop thread running the fake Anthropic upstream and the gateway."""

    def __init__(self, tmp_dir: Path, *, in_process: bool) -> None:
        self.tmp_dir = tmp_dir
        self.in_process = in_process
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.upstream = FakeAnthropicUpstream(api_key=ANTHROPIC_KEY)
        self.running: RunningGateway | None = None
        self.api_key = ""

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> AnthropicGatewayHarness:
        self._thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        await self.upstream.start()
        config_path = self.tmp_dir / "siraya.yaml"
        config_path.write_text(
            CONFIG_TEMPLATE.format(
                data_dir=self.tmp_dir / "data", base_url=self.upstream.base_url, upstream_model=UPSTREAM_MODEL
            )
        )
        config = load_config(config_path, {"ANTHROPIC_KEY": ANTHROPIC_KEY})
        self.running = await start_gateway(config, in_process=self.in_process)
        _, self.api_key = await self.running.gateway.keys.create(NewKey(name="anthropic-e2e"))

    @property
    def base_url(self) -> str:
        assert self.running is not None
        return f"http://127.0.0.1:{self.running.http_port}/v1"

    def stop(self) -> None:
        async def _stop() -> None:
            if self.running is not None:
                await self.running.stop()
            await self.upstream.stop()

        self.run(_stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
