"""A running gateway in front of the fake Gemini API, on a background event loop, for SDK-driven tests."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.loop_gateway import LoopGateway
from tests.fakes.gemini_upstream import FakeGeminiUpstream

GEMINI_KEY = "AIzaSy-e2e-gemini-secret-0123456789"

CONFIG_TEMPLATE = """
server:
  host: 127.0.0.1
  http_port: 0
  grpc_port: 0
  data_dir: {data_dir}
providers:
  google:
    type: gemini
    base_url: {base_url}
    api_key: ${{GEMINI_KEY}}
    read_timeout: 5
  google-internal:
    type: gemini
    base_url: {base_url}
    api_key: ${{GEMINI_KEY}}
    read_timeout: 5
    media_allow_private_addresses: true
    media_allow_http: true
models:
  - id: gemini-flash-internal
    provider: google-internal
    upstream_model: gemini-2.5-flash
    kind: chat
  - id: gemini-flash
    provider: google
    upstream_model: gemini-2.5-flash
    kind: chat
  - id: gemini-3-pro
    provider: google
    upstream_model: gemini-3-pro-preview
    kind: chat
  - id: gemini-embed
    provider: google
    upstream_model: gemini-embedding-001
    kind: embedding
  - id: gemini-image
    provider: google
    upstream_model: gemini-2.5-flash-image
    kind: image
  - id: imagen
    provider: google
    upstream_model: imagen-4.0-generate-001
    kind: image
  - id: veo
    provider: google
    upstream_model: veo-3.0-generate-001
    kind: video
routing:
  # These tests inject upstream faults on purpose; a breaker opening would hide the next mapping.
  breaker: {{enabled: false}}
"""


class GeminiGatewayHarness(LoopGateway):
    """Owns a loop thread running the fake Gemini API and the gateway configured with `type: gemini`."""

    def __init__(self, tmp_dir: Path, *, in_process: bool) -> None:
        self.upstream = FakeGeminiUpstream(api_key=GEMINI_KEY, video_polls=2)
        super().__init__(tmp_dir, in_process=in_process, upstreams=(self.upstream,))

    async def _start(self) -> None:
        await self._start_upstreams()
        config = CONFIG_TEMPLATE.format(data_dir=self.tmp_dir / "data", base_url=self.upstream.base_url)
        await self._start_gateway(config, {"GEMINI_KEY": GEMINI_KEY}, "gemini-e2e")

    def media_url(self, name: str) -> str:
        """An image on the fake's loopback address (plain http), as a client's image_url."""
        return f"http://127.0.0.1:{self.upstream.port}/media/{name}"
