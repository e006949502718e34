"""A running gateway in front of the fake Gemini API, on a background event loop, for SDK-driven tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from server.accounts.keys import NewKey
from server.app import RunningGateway, start_gateway
from server.config import load_config
from tests.fakes.gemini_upstream import FakeGeminiUpstream

T = TypeVar("T")
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


class GeminiGatewayHarness:
    """Owns a loop thread running the fake Gemini API and the gateway configured with `type: gemini`."""

    def __init__(self, tmp_dir: Path, *, in_process: bool) -> None:
        self.tmp_dir = tmp_dir
        self.in_process = in_process
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.upstream = FakeGeminiUpstream(api_key=GEMINI_KEY, video_polls=2)
        self.running: RunningGateway | None = None
        self.api_key = ""

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> GeminiGatewayHarness:
        self._thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        await self.upstream.start()
        config_path = self.tmp_dir / "siraya.yaml"
        config_path.write_text(
            CONFIG_TEMPLATE.format(data_dir=self.tmp_dir / "data", base_url=self.upstream.base_url)
        )
        config = load_config(config_path, {"GEMINI_KEY": GEMINI_KEY})
        self.running = await start_gateway(config, in_process=self.in_process)
        _, self.api_key = await self.running.gateway.keys.create(NewKey(name="gemini-e2e"))

    def media_url(self, name: str) -> str:
        """An image on the fake's loopback address (plain http), as a client's image_url."""
        return f"http://127.0.0.1:{self.upstream.port}/media/{name}"

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
