"""A running gateway in front of fake upstreams, on a background event loop, for SDK-driven tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from server.accounts.keys import NewKey
from server.app import RunningGateway, start_gateway
from server.config import load_config
from tests.fakes.openai_upstream import FakeOpenAIUpstream

T = TypeVar("T")
UPSTREAM_KEY = "sk-upstream-secret-0123456789"

CONFIG_TEMPLATE = """
server:
  host: 127.0.0.1
  http_port: 0
  grpc_port: 0
  data_dir: {data_dir}
  max_body_bytes: 65536
providers:
  fake:
    type: openai
    base_url: {native_url}
    api_key: ${{FAKE_UPSTREAM_KEY}}
    native_responses: true
  fakechat:
    type: openai
    base_url: {chat_only_url}
    api_key: ${{FAKE_UPSTREAM_KEY}}
    native_responses: false
    read_timeout: 5
  impatient:
    type: openai
    base_url: {native_url}
    api_key: ${{FAKE_UPSTREAM_KEY}}
    read_timeout: 0.5
  dead:
    type: openai
    base_url: http://127.0.0.1:{dead_port}/v1
    api_key: ${{FAKE_UPSTREAM_KEY}}
    connect_timeout: 2
models:
  - id: gpt-test
    provider: fake
    upstream_model: gpt-4o-mini
    kind: chat
  - id: gpt-translated
    provider: fakechat
    upstream_model: llama-3
    kind: chat
  - id: gpt-impatient
    provider: impatient
    upstream_model: gpt-4o-mini
  - id: gpt-dead
    provider: dead
    kind: chat
  - id: embed-test
    provider: fake
    upstream_model: text-embedding-3-small
    kind: embedding
  - id: image-test
    provider: fake
    upstream_model: gpt-image-1
    kind: image
  - id: video-test
    provider: fake
    upstream_model: sora-2
    kind: video
"""


def _unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GatewayHarness:
    """Owns a loop thread running two fake upstreams (native and chat-only) and the gateway."""

    def __init__(self, tmp_dir: Path, *, in_process: bool) -> None:
        self.tmp_dir = tmp_dir
        self.in_process = in_process
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.native = FakeOpenAIUpstream(api_key=UPSTREAM_KEY, native_responses=True)
        self.chat_only = FakeOpenAIUpstream(api_key=UPSTREAM_KEY, native_responses=False)
        self.running: RunningGateway | None = None
        self.api_key = ""
        self.other_key = ""

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> GatewayHarness:
        self._thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        await self.native.start()
        await self.chat_only.start()
        config_path = self.tmp_dir / "siraya.yaml"
        config_path.write_text(
            CONFIG_TEMPLATE.format(
                data_dir=self.tmp_dir / "data",
                native_url=self.native.base_url,
                chat_only_url=self.chat_only.base_url,
                dead_port=_unused_port(),
            )
        )
        config = load_config(config_path, {"FAKE_UPSTREAM_KEY": UPSTREAM_KEY})
        self.running = await start_gateway(config, in_process=self.in_process)
        _, self.api_key = await self.running.gateway.keys.create(NewKey(name="tests"))
        _, self.other_key = await self.running.gateway.keys.create(NewKey(name="someone-else"))

    @property
    def base_url(self) -> str:
        assert self.running is not None
        return f"http://127.0.0.1:{self.running.http_port}/v1"

    @property
    def grpc_target(self) -> str:
        assert self.running is not None
        return f"127.0.0.1:{self.running.grpc_port}"

    def stop(self) -> None:
        async def _stop() -> None:
            if self.running is not None:
                await self.running.stop()
            await self.native.stop()
            await self.chat_only.stop()

        self.run(_stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
