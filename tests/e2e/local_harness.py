"""A running gateway serving the bundled local model, on a background event loop, for SDK-driven tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from server.accounts.keys import NewKey
from server.app import RunningGateway, start_gateway
from server.config import load_config
from server.providers.local import LocalProvider

T = TypeVar("T")
MODEL = "local/smollm2-135m-instruct"

CONFIG = """
server:
  host: 127.0.0.1
  http_port: 0
  grpc_port: 0
  data_dir: {data_dir}
providers:
  local:
    type: local
    bundled_model: smollm2-135m-instruct
    context_size: 4096
    queue_size: {queue_size}
models:
  - id: {model}
    provider: local
    upstream_model: smollm2-135m-instruct
"""


class LocalGateway:
    """The gateway on its own loop thread, with one local provider (a short line, to test 429s)."""

    def __init__(self, tmp_dir: Path, *, queue_size: int = 1, in_process: bool = True) -> None:
        self.tmp_dir = tmp_dir
        self.queue_size = queue_size
        self.in_process = in_process
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.running: RunningGateway | None = None
        self.api_key = ""

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> LocalGateway:
        self._thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        path = self.tmp_dir / "siraya.yaml"
        path.write_text(
            CONFIG.format(data_dir=self.tmp_dir / "data", queue_size=self.queue_size, model=MODEL)
        )
        self.running = await start_gateway(load_config(path, {}), in_process=self.in_process)
        _, self.api_key = await self.running.gateway.keys.create(NewKey(name="local-tests"))

    @property
    def provider(self) -> LocalProvider:
        assert self.running is not None
        provider = self.running.gateway.providers["local"]
        assert isinstance(provider, LocalProvider)
        return provider

    @property
    def base_url(self) -> str:
        assert self.running is not None
        return f"http://127.0.0.1:{self.running.http_port}/v1"

    @property
    def root_url(self) -> str:
        assert self.running is not None
        return f"http://127.0.0.1:{self.running.http_port}"

    def stop(self) -> None:
        if self.running is not None:
            self.run(self.running.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
