"""A running gateway serving the bundled local model, on a background event loop, for SDK-driven tests."""

from __future__ import annotations

from pathlib import Path

from server.providers.local import LocalProvider
from tests.e2e.loop_gateway import LoopGateway

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


class LocalGateway(LoopGateway):
    """The gateway on its own loop thread, with one local provider (a short line, to test 429s)."""

    run_timeout = 60

    def __init__(self, tmp_dir: Path, *, queue_size: int = 1, in_process: bool = True) -> None:
        super().__init__(tmp_dir, in_process=in_process)
        self.queue_size = queue_size

    async def _start(self) -> None:
        config = CONFIG.format(data_dir=self.tmp_dir / "data", queue_size=self.queue_size, model=MODEL)
        await self._start_gateway(config, {}, "local-tests")

    @property
    def provider(self) -> LocalProvider:
        assert self.running is not None
        provider = self.running.gateway.providers["local"]
        assert isinstance(provider, LocalProvider)
        return provider
