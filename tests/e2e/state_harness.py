"""A gateway in front of every kind of fake upstream (OpenAI native Responses, OpenAI chat-only,
Anthropic, Gemini), for the stored-responses and cache tests; the `*-cached` models opt in to the
response cache."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from server.accounts.keys import (
    VISIBLE_PREFIX_LENGTH,
    KeyRecord,
    NewKey,
    generate_secret,
    hash_secret,
)
from tests.e2e.loop_gateway import LoopGateway
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.gemini_upstream import FakeGeminiUpstream
from tests.fakes.openai_upstream import FakeOpenAIUpstream

OPENAI_KEY = "sk-upstream-state-0123456789"
ANTHROPIC_KEY = "sk-ant-api03-state-0123456789abcdef"
GEMINI_KEY = "AIzaSy-state-gemini-0123456789"

CONFIG_TEMPLATE = """
server:
  host: 127.0.0.1
  http_port: 0
  grpc_port: 0
  data_dir: {data_dir}
providers:
  native:
    type: openai
    base_url: {native_url}
    api_key: ${{OPENAI_KEY}}
    native_responses: true
  chatonly:
    type: openai
    base_url: {chat_url}
    api_key: ${{OPENAI_KEY}}
    native_responses: false
    read_timeout: 30
  anthropic:
    type: anthropic
    base_url: {anthropic_url}
    api_key: ${{ANTHROPIC_KEY}}
  google:
    type: gemini
    base_url: {gemini_url}
    api_key: ${{GEMINI_KEY}}
models:
  - id: gpt-native
    provider: native
    upstream_model: gpt-4o-mini
  - id: gpt-chat
    provider: chatonly
    upstream_model: llama-3
  - id: claude
    provider: anthropic
    upstream_model: claude-sonnet-4-5-20250929
  - id: gemini
    provider: google
    upstream_model: gemini-2.5-flash
  - id: gpt-cached
    provider: chatonly
    upstream_model: llama-3
    pricing: {{input_per_million: 1000, output_per_million: 2000}}
    cache: {{ttl: 300}}
  - id: gpt-sampled
    provider: chatonly
    upstream_model: llama-3
    cache: {{ttl: 300, allow_sampled: true}}
  - id: claude-cached
    provider: anthropic
    upstream_model: claude-sonnet-4-5-20250929
    pricing: {{input_per_million: 1000, output_per_million: 2000}}
    cache: {{ttl: 300}}
  - id: embed-plain
    provider: native
    upstream_model: text-embedding-3-small
    kind: embedding
  - id: gpt-semantic
    provider: chatonly
    upstream_model: llama-3
    cache: {{ttl: 300, semantic: {{embedding_model: embed-plain, threshold: 0.95}}}}
  - id: embed-cached
    provider: native
    upstream_model: text-embedding-3-small
    kind: embedding
    pricing: {{input_per_million: 1000}}
    cache: {{ttl: 300}}
routing:
  breaker: {{enabled: false}}
responses:
  background_lease_seconds: {lease}
{extra}
"""


class StateHarness(LoopGateway):
    """Owns a loop thread running the four fakes and the gateway; `other_key` is a second key."""

    def __init__(self, tmp_dir: Path, *, in_process: bool, lease: float = 0.2, extra: str = "") -> None:
        self.native = FakeOpenAIUpstream(api_key=OPENAI_KEY, native_responses=True)
        self.chat_only = FakeOpenAIUpstream(api_key=OPENAI_KEY, native_responses=False)
        self.anthropic = FakeAnthropicUpstream(api_key=ANTHROPIC_KEY)
        self.gemini = FakeGeminiUpstream(api_key=GEMINI_KEY)
        super().__init__(
            tmp_dir,
            in_process=in_process,
            upstreams=(self.native, self.chat_only, self.anthropic, self.gemini),
        )
        self.lease = lease
        self.extra = extra
        self.other_key = ""

    def config_text(self) -> str:
        return CONFIG_TEMPLATE.format(
            data_dir=self.tmp_dir / "data",
            native_url=self.native.base_url,
            chat_url=self.chat_only.base_url,
            anthropic_url=self.anthropic.base_url,
            gemini_url=self.gemini.base_url,
            lease=self.lease,
            extra=self.extra,
        )

    async def _start(self) -> None:
        await self._start_upstreams()
        env = {"OPENAI_KEY": OPENAI_KEY, "ANTHROPIC_KEY": ANTHROPIC_KEY, "GEMINI_KEY": GEMINI_KEY}
        await self._start_gateway(self.config_text(), env, "state-e2e")
        assert self.running is not None
        _, self.other_key = await self.running.gateway.keys.create(NewKey(name="someone-else"))

    def new_key(self, key_id: str | None = None, **fields: Any) -> tuple[str, str]:
        """Another key with these settings (and this id, when given): (its id, its secret)."""

        async def create() -> tuple[str, str]:
            assert self.running is not None
            keys = self.running.gateway.keys
            if key_id is None:
                record, secret = await keys.create(NewKey(name="test", **fields))
                return record.id, secret
            secret = generate_secret()
            record = KeyRecord(
                id=key_id,
                name=key_id,
                prefix=secret[:VISIBLE_PREFIX_LENGTH],
                created_at=int(time.time()),
                **fields,
            )
            await keys.store.insert_key(record, hash_secret(secret))
            return key_id, secret

        return self.run(create())
