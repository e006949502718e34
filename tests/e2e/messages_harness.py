"""A running gateway with three kinds of upstream behind it, for the Anthropic Messages front door.

One model per upstream protocol: `claude-sonnet` on the fake Anthropic API, `gpt-test` on the fake
OpenAI-compatible server (a reasoning model: it thinks in `reasoning_content` when asked to),
`gemini-flash` on the fake Gemini API (a Gemini 3 model, which refuses a function call sent back
without its thought signature), plus `claude-dead` on a port nobody listens on. Every model is
priced, so credits apply. Besides the usual key, the harness makes keys that provoke each refusal:
one allowed one request a minute, one with almost no credit, one allowed only `gpt-test`, one
allowed only `claude-dead`.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from server.accounts.keys import NewKey
from tests.e2e.loop_gateway import LoopGateway
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.gemini_upstream import FakeGeminiUpstream
from tests.fakes.openai_upstream import FakeOpenAIUpstream

ANTHROPIC_KEY = "sk-ant-api03-messages-e2e-0123456789"
OPENAI_KEY = "sk-openai-messages-e2e-0123456789"
GEMINI_KEY = "AIzaSy-messages-e2e-0123456789"
CLAUDE_UPSTREAM_MODEL = "claude-sonnet-4-5-20250929"
GEMINI_UPSTREAM_MODEL = "gemini-3-flash-preview"
MAX_BODY_BYTES = 262144

CONFIG = """
server:
  host: 127.0.0.1
  http_port: 0
  grpc_port: 0
  data_dir: {data_dir}
  max_body_bytes: {max_body_bytes}
providers:
  anthropic:
    type: anthropic
    base_url: {anthropic_url}
    api_key: ${{ANTHROPIC_KEY}}
    read_timeout: 5
  openai:
    type: openai
    base_url: {openai_url}
    api_key: ${{OPENAI_KEY}}
    read_timeout: 5
  google:
    type: gemini
    base_url: {gemini_url}
    api_key: ${{GEMINI_KEY}}
    read_timeout: 5
  dead:
    type: anthropic
    base_url: http://127.0.0.1:{dead_port}
    api_key: ${{ANTHROPIC_KEY}}
    connect_timeout: 2
models:
  - id: claude-sonnet
    provider: anthropic
    upstream_model: {claude_model}
    pricing: {{input_per_million: 1.0, output_per_million: 2.0}}
  - id: gpt-test
    provider: openai
    upstream_model: gpt-4o-mini
    pricing: {{input_per_million: 1.0, output_per_million: 2.0}}
  - id: gemini-flash
    provider: google
    upstream_model: {gemini_model}
    pricing: {{input_per_million: 1.0, output_per_million: 2.0}}
  - id: claude-dead
    provider: dead
    upstream_model: {claude_model}
routing:
  # These tests inject upstream faults on purpose; a breaker opening would hide the next mapping.
  breaker: {{enabled: false}}
"""


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MessagesGatewayHarness(LoopGateway):
    """Owns a loop thread running the three fake upstreams and the gateway."""

    def __init__(self, tmp_dir: Path, *, in_process: bool) -> None:
        self.anthropic = FakeAnthropicUpstream(api_key=ANTHROPIC_KEY)
        self.openai = FakeOpenAIUpstream(
            api_key=OPENAI_KEY, native_responses=False, reasoning_field="reasoning_content"
        )
        self.gemini = FakeGeminiUpstream(api_key=GEMINI_KEY)
        super().__init__(tmp_dir, in_process=in_process, upstreams=(self.anthropic, self.openai, self.gemini))
        self.keys: dict[str, str] = {}

    async def _start(self) -> None:
        await self._start_upstreams()
        config = CONFIG.format(
            data_dir=self.tmp_dir / "data",
            max_body_bytes=MAX_BODY_BYTES,
            anthropic_url=self.anthropic.base_url,
            openai_url=self.openai.base_url,
            gemini_url=self.gemini.base_url,
            dead_port=_unused_port(),
            claude_model=CLAUDE_UPSTREAM_MODEL,
            gemini_model=GEMINI_UPSTREAM_MODEL,
        )
        env = {"ANTHROPIC_KEY": ANTHROPIC_KEY, "OPENAI_KEY": OPENAI_KEY, "GEMINI_KEY": GEMINI_KEY}
        await self._start_gateway(config, env, "messages-e2e")
        assert self.running is not None
        specs: dict[str, dict[str, Any]] = {
            "one_a_minute": {"rpm_limit": 1},
            "broke": {"credit_limit": 0.000001},
            "gpt_only": {"allowed_models": ("gpt-test",)},
            "dead_only": {"allowed_models": ("claude-dead",)},
        }
        for name, spec in specs.items():
            _, self.keys[name] = await self.running.gateway.keys.create(NewKey(name=name, **spec))

    def upstream_body(self, model: str) -> Any:
        """The JSON the upstream serving `model` received last."""
        if model.startswith("claude"):
            return self.anthropic.requests[-1].json
        if model.startswith("gpt"):
            return self.openai.requests_to("/v1/chat/completions")[-1].json
        return self.gemini.requests[-1].json

    def upstream_raw(self, model: str) -> bytes:
        if model.startswith("claude"):
            return self.anthropic.requests[-1].body
        if model.startswith("gpt"):
            return self.openai.requests_to("/v1/chat/completions")[-1].body
        return self.gemini.requests[-1].body
