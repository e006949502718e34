"""A running gateway in front of fake upstreams, on a background event loop, for SDK-driven tests."""

from __future__ import annotations

from pathlib import Path

from server.accounts.keys import NewKey
from tests.e2e.loop_gateway import LoopGateway
from tests.fakes.openai_upstream import FakeOpenAIUpstream

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


class GatewayHarness(LoopGateway):
    """Owns a loop thread running two fake upstreams (native and chat-only) and the gateway."""

    def __init__(self, tmp_dir: Path, *, in_process: bool) -> None:
        self.native = FakeOpenAIUpstream(api_key=UPSTREAM_KEY, native_responses=True)
        self.chat_only = FakeOpenAIUpstream(api_key=UPSTREAM_KEY, native_responses=False)
        super().__init__(tmp_dir, in_process=in_process, upstreams=(self.native, self.chat_only))
        self.other_key = ""

    async def _start(self) -> None:
        await self._start_upstreams()
        config = CONFIG_TEMPLATE.format(
            data_dir=self.tmp_dir / "data",
            native_url=self.native.base_url,
            chat_only_url=self.chat_only.base_url,
            dead_port=_unused_port(),
        )
        await self._start_gateway(config, {"FAKE_UPSTREAM_KEY": UPSTREAM_KEY}, "tests")
        assert self.running is not None
        _, self.other_key = await self.running.gateway.keys.create(NewKey(name="someone-else"))
