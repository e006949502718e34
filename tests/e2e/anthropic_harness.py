"""A running gateway in front of the fake Anthropic upstream, on a background event loop."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.loop_gateway import LoopGateway
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream

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


class AnthropicGatewayHarness(LoopGateway):
    """Owns a loop thread running the fake Anthropic upstream and the gateway."""

    def __init__(self, tmp_dir: Path, *, in_process: bool) -> None:
        self.upstream = FakeAnthropicUpstream(api_key=ANTHROPIC_KEY)
        super().__init__(tmp_dir, in_process=in_process, upstreams=(self.upstream,))

    async def _start(self) -> None:
        await self._start_upstreams()
        config = CONFIG_TEMPLATE.format(
            data_dir=self.tmp_dir / "data", base_url=self.upstream.base_url, upstream_model=UPSTREAM_MODEL
        )
        await self._start_gateway(config, {"ANTHROPIC_KEY": ANTHROPIC_KEY}, "anthropic-e2e")
