"""One gateway in front of all three fake upstreams (OpenAI-compatible, Anthropic, Gemini), for the
client-library tests: each library runs the same capabilities against a model of each upstream.

`UPSTREAMS` names the three; `ClientsGatewayHarness.upstream(name)` gives what a test needs to know
about one of them: its chat model, its embedding model (None where the upstream has none), how to
make its next reply a tool call, and what the upstream received last.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.loop_gateway import LoopGateway
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream, ScriptedMessage
from tests.fakes.gemini_upstream import FakeGeminiUpstream, GeminiReply, ScriptedCall
from tests.fakes.openai_upstream import FakeOpenAIUpstream, ScriptedReply, ScriptedToolCall

__all__ = ["UPSTREAMS", "ClientsGatewayHarness", "UpstreamUnderTest"]

UPSTREAMS = ("openai", "anthropic", "gemini")
_GENERATION_PATHS = ("/chat/completions", "/responses", "/messages", "enerateContent")

OPENAI_KEY = "sk-upstream-clients-0123456789"
ANTHROPIC_KEY = "sk-ant-api03-clients-0123456789abcdef"
GEMINI_KEY = "AIzaSy-clients-gemini-0123456789"

CONFIG_TEMPLATE = """
server:
  host: 127.0.0.1
  http_port: 0
  grpc_port: 0
  data_dir: {data_dir}
providers:
  fake:
    type: openai
    base_url: {openai_url}
    api_key: ${{OPENAI_KEY}}
    native_responses: true
    read_timeout: 5
  anthropic:
    type: anthropic
    base_url: {anthropic_url}
    api_key: ${{ANTHROPIC_KEY}}
    read_timeout: 5
  google:
    type: gemini
    base_url: {gemini_url}
    api_key: ${{GEMINI_KEY}}
    read_timeout: 5
models:
  - id: gpt-test
    provider: fake
    upstream_model: gpt-4o-mini
    kind: chat
  - id: embed-test
    provider: fake
    upstream_model: text-embedding-3-small
    kind: embedding
  - id: claude-sonnet
    provider: anthropic
    upstream_model: claude-sonnet-4-5-20250929
    kind: chat
  - id: gemini-flash
    provider: google
    upstream_model: gemini-2.5-flash
    kind: chat
  - id: gemini-embed
    provider: google
    upstream_model: gemini-embedding-001
    kind: embedding
"""


@dataclass(frozen=True)
class UpstreamUnderTest:
    """One upstream as a client-library test sees it, through the gateway."""

    name: str
    chat_model: str
    embedding_model: str | None
    fake: FakeOpenAIUpstream | FakeAnthropicUpstream | FakeGeminiUpstream

    def script_tool_call(self, tool: str, arguments: dict[str, Any]) -> None:
        """Make the upstream's next generation a call of `tool`, as a model that chose it would.

        Each fake has a default plan too, but they differ on `tool_choice: auto` (Gemini's answers
        with text), so a round trip scripts its first turn everywhere; the answer to the tool's
        result is each fake's own default.
        """
        if isinstance(self.fake, FakeOpenAIUpstream):
            self.fake.script_chat(ScriptedReply(tool_calls=[ScriptedToolCall(tool, arguments)]))
        elif isinstance(self.fake, FakeAnthropicUpstream):
            block = {"type": "tool_use", "id": "toolu_clients01", "name": tool, "input": arguments}
            self.fake.script(ScriptedMessage([block], "tool_use"))
        else:
            self.fake.script(GeminiReply(calls=[ScriptedCall(tool, arguments)]))

    def requested_schema(self) -> Any:
        """The JSON Schema the last generation asked the upstream to answer in, or None."""
        body = self.generations()[-1]
        if self.name == "anthropic":
            return ((body.get("output_config") or {}).get("format") or {}).get("schema")
        if self.name == "gemini":
            return (body.get("generationConfig") or {}).get("responseJsonSchema")
        chat_format = body.get("response_format") or {}
        if chat_format.get("type") == "json_schema":
            return chat_format["json_schema"]["schema"]
        responses_format = (body.get("text") or {}).get("format") or {}
        return responses_format.get("schema")

    def forced_tool(self) -> str | None:
        """The tool the last generation obliged the upstream to call: its name, "*" for any, or None."""
        body = self.generations()[-1]
        if self.name == "gemini":
            calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
            if calling.get("mode") != "ANY":
                return None
            names = calling.get("allowedFunctionNames") or []
            return names[0] if len(names) == 1 else "*"
        choice = body.get("tool_choice")
        if choice == "required" or isinstance(choice, dict) and choice.get("type") == "any":
            return "*"
        if isinstance(choice, dict):
            named = choice.get("name") or (choice.get("function") or {}).get("name")
            return str(named) if named else None
        return None

    def generations(self) -> list[Any]:
        """The JSON bodies of the generation requests the upstream received, oldest first."""
        return [r.json for r in self.fake.requests if r.path.endswith(_GENERATION_PATHS)]

    def last_generation_streamed(self) -> bool:
        """Whether the upstream was asked to stream its last generation."""
        last = [r for r in self.fake.requests if r.path.endswith(_GENERATION_PATHS)][-1]
        return last.path.endswith(":streamGenerateContent") or last.json.get("stream") is True


class ClientsGatewayHarness(LoopGateway):
    """Owns a loop thread running the three fakes and one gateway with a model on each."""

    def __init__(self, tmp_dir: Path, *, in_process: bool) -> None:
        self.openai = FakeOpenAIUpstream(api_key=OPENAI_KEY, native_responses=True)
        self.anthropic = FakeAnthropicUpstream(api_key=ANTHROPIC_KEY)
        self.gemini = FakeGeminiUpstream(api_key=GEMINI_KEY)
        super().__init__(tmp_dir, in_process=in_process, upstreams=(self.openai, self.anthropic, self.gemini))

    async def _start(self) -> None:
        await self._start_upstreams()
        config = CONFIG_TEMPLATE.format(
            data_dir=self.tmp_dir / "data",
            openai_url=self.openai.base_url,
            anthropic_url=self.anthropic.base_url,
            gemini_url=self.gemini.base_url,
        )
        env = {"OPENAI_KEY": OPENAI_KEY, "ANTHROPIC_KEY": ANTHROPIC_KEY, "GEMINI_KEY": GEMINI_KEY}
        await self._start_gateway(config, env, "client-libraries")

    def upstream(self, name: str) -> UpstreamUnderTest:
        if name == "openai":
            return UpstreamUnderTest(name, "gpt-test", "embed-test", self.openai)
        if name == "anthropic":
            return UpstreamUnderTest(name, "claude-sonnet", None, self.anthropic)
        if name == "gemini":
            return UpstreamUnderTest(name, "gemini-flash", "gemini-embed", self.gemini)
        raise ValueError(f"unknown upstream {name!r}")
