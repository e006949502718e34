"""Claude Code, the real CLI from npm, run headless against the gateway's Messages front door (#15).

`claude -p ... --output-format json` talks to the gateway (ANTHROPIC_BASE_URL, a gateway key in
ANTHROPIC_AUTH_TOKEN) and answers with a model served by the OpenAI-compatible fake and with a
Claude model through the Anthropic fake, each with a full tool round trip: the fake scripts a call
of Claude Code's own Read tool on a file in the working directory, Claude Code runs it and sends
the result back, and the fake's final answer is what Claude Code prints.

Claude Code must only talk to loopback: its telemetry, updater and other non-essential traffic are
switched off, HOME is a fresh directory, and every proxy variable points at a loopback port nobody
listens on (NO_PROXY exempts only the gateway), so anything else it tried would fail.

Skipped when no working `claude` is installed: `npm install -g @anthropic-ai/claude-code` puts it
on PATH, or SIRAYA_CLAUDE_CODE names the executable.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.caching_harness import CachingGatewayHarness
from tests.fakes.anthropic_upstream import ScriptedMessage
from tests.fakes.openai_upstream import ScriptedReply, ScriptedToolCall

SECRET = "the-vault-code-is-4711"
RUN_TIMEOUT = 180


@cache
def claude_code() -> str | None:
    """The path of a `claude` that runs, or None."""
    path = os.environ.get("SIRAYA_CLAUDE_CODE") or shutil.which("claude")
    if path is None:
        return None
    try:
        done = subprocess.run(
            [path, "--version"], capture_output=True, stdin=subprocess.DEVNULL, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if done.returncode == 0 and b"Claude Code" in done.stdout else None


pytestmark = pytest.mark.skipif(
    claude_code() is None,
    reason="Claude Code is not installed (npm install -g @anthropic-ai/claude-code; or SIRAYA_CLAUDE_CODE)",
)


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CachingGatewayHarness]:
    running = CachingGatewayHarness(tmp_path_factory.mktemp("claude-code"), in_process=True)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "project"
    work.mkdir()
    (work / "notes.txt").write_text(f"Remember: {SECRET}\n")
    return work


def run_claude(gateway: CachingGatewayHarness, model: str, prompt: str, workdir: Path) -> dict[str, Any]:
    """Claude Code's JSON result for one headless prompt."""
    executable = claude_code()
    assert executable is not None
    home = workdir.parent / "home"
    home.mkdir(exist_ok=True)
    dead_proxy = f"http://127.0.0.1:{_unused_port()}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "ANTHROPIC_BASE_URL": gateway.root_url,
        "ANTHROPIC_AUTH_TOKEN": gateway.api_key,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_BUG_COMMAND": "1",
        "HTTP_PROXY": dead_proxy,
        "HTTPS_PROXY": dead_proxy,
        "http_proxy": dead_proxy,
        "https_proxy": dead_proxy,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    done = subprocess.run(
        [executable, "-p", prompt, "--output-format", "json", "--model", model],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, (done.stdout.decode(errors="replace"), done.stderr[-2000:])
    result: dict[str, Any] = orjson.loads(done.stdout)
    assert result["is_error"] is False, result
    return result


def test_claude_code_answers_with_a_model_on_an_openai_compatible_upstream(
    gateway: CachingGatewayHarness, workdir: Path
) -> None:
    gateway.openai.script_chat(ScriptedReply(content="PONG from an OpenAI-compatible model"))
    result = run_claude(gateway, "gpt-test", "Say PONG", workdir)
    assert result["result"] == "PONG from an OpenAI-compatible model"
    sent = gateway.openai.requests_to("/v1/chat/completions")[-1].json
    assert sent["model"] == "gpt-4o-mini"
    assert any(tool["function"]["name"] == "Read" for tool in sent["tools"])


def test_claude_code_answers_with_claude_through_the_anthropic_upstream(
    gateway: CachingGatewayHarness, workdir: Path
) -> None:
    gateway.anthropic.script(ScriptedMessage([{"type": "text", "text": "PONG from Claude"}]))
    result = run_claude(gateway, "claude-cached", "Say PONG", workdir)
    assert result["result"] == "PONG from Claude"
    sent = gateway.anthropic.requests[-1]
    # The relay lane: Claude Code's own body, cache breakpoints included, with only the model changed.
    assert sent.json["model"] == "claude-sonnet-4-5-20250929"
    assert b'"cache_control":{"type":"ephemeral"' in sent.body


def test_claude_code_completes_a_tool_round_trip_on_an_openai_compatible_upstream(
    gateway: CachingGatewayHarness, workdir: Path
) -> None:
    calls_before = len(gateway.openai.requests_to("/v1/chat/completions"))
    gateway.openai.script_chat(
        ScriptedReply(
            tool_calls=[
                ScriptedToolCall("Read", {"file_path": str(workdir / "notes.txt")}, id="call_read_notes")
            ]
        )
    )
    gateway.openai.script_chat(ScriptedReply(content="The notes hold the vault code."))
    result = run_claude(gateway, "gpt-test", "What do my notes say?", workdir)
    assert result["result"] == "The notes hold the vault code."
    sent = gateway.openai.requests_to("/v1/chat/completions")[calls_before:]
    tool_messages = [m for m in sent[-1].json["messages"] if m["role"] == "tool"]
    assert tool_messages and tool_messages[-1]["tool_call_id"] == "call_read_notes"
    assert SECRET in orjson.dumps(tool_messages[-1]["content"]).decode()


def test_claude_code_completes_a_tool_round_trip_with_claude(
    gateway: CachingGatewayHarness, workdir: Path
) -> None:
    calls_before = len(gateway.anthropic.requests)
    gateway.anthropic.script(
        ScriptedMessage(
            [
                {
                    "type": "tool_use",
                    "id": "toolu_read_notes",
                    "name": "Read",
                    "input": {"file_path": str(workdir / "notes.txt")},
                }
            ],
            "tool_use",
        )
    )
    gateway.anthropic.script(ScriptedMessage([{"type": "text", "text": "The notes hold the vault code."}]))
    result = run_claude(gateway, "claude-cached", "What do my notes say?", workdir)
    assert result["result"] == "The notes hold the vault code."
    last = gateway.anthropic.requests[calls_before:][-1].json
    results = [
        block
        for message in last["messages"]
        if message["role"] == "user" and isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]
    assert results and results[-1]["tool_use_id"] == "toolu_read_notes"
    assert SECRET in orjson.dumps(results[-1]["content"]).decode()
