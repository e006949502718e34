"""The Vercel AI SDK (`ai`, `@ai-sdk/openai-compatible`, `@ai-sdk/openai`) through node, against a
model on each upstream behind the gateway.

Three flavours: `@ai-sdk/openai-compatible`; `@ai-sdk/openai`'s chat model; and `@ai-sdk/openai`'s
default model, which speaks the Responses API. Each runs `js/vercel_ai.mjs` once per upstream (all
capabilities in one node process, to keep this fast) and each test judges one capability of that
report. Skipped, with the reason, where node or npm is missing or the packages cannot be installed.

In-process mode only: a node run costs about two seconds on these machines, and the loopback gRPC
hop changes nothing a JavaScript client sees (the Python libraries cover both modes).
"""

from __future__ import annotations

import subprocess
import threading
from typing import Any

import orjson
import pytest

from tests.e2e.clients_harness import UPSTREAMS, ClientsGatewayHarness, UpstreamUnderTest
from tests.e2e.node_clients import NodeClients, ensure_installed

FLAVOURS = ("openai-compatible", "openai-chat", "openai-responses")
NODE_TIMEOUT = 60

Report = dict[str, Any]

pytestmark = pytest.mark.parametrize("clients_gateway", ["in_process"], indirect=True)


@pytest.fixture(scope="module")
def node_clients() -> NodeClients:
    clients = ensure_installed()
    if clients.directory is None:
        pytest.skip(f"Vercel AI SDK unavailable: {clients.unavailable}")
    return clients


@pytest.fixture(scope="module")
def reports() -> dict[tuple[int, str, str], Report]:
    return {}


@pytest.fixture(params=UPSTREAMS)
def upstream(request: pytest.FixtureRequest, clients_gateway: ClientsGatewayHarness) -> UpstreamUnderTest:
    return clients_gateway.upstream(request.param)


@pytest.fixture(params=FLAVOURS)
def report(
    request: pytest.FixtureRequest,
    node_clients: NodeClients,
    reports: dict[tuple[int, str, str], Report],
    clients_gateway: ClientsGatewayHarness,
    upstream: UpstreamUnderTest,
) -> Report:
    """What vercel_ai.mjs saw for this flavour and upstream (one node run, shared by the tests)."""
    key = (id(clients_gateway), request.param, upstream.name)
    if key not in reports:
        reports[key] = _run(node_clients, clients_gateway, upstream, request.param)
    return reports[key]


def _run(
    clients: NodeClients, gateway: ClientsGatewayHarness, upstream: UpstreamUnderTest, flavour: str
) -> Report:
    spec = {
        "baseURL": gateway.base_url,
        "apiKey": gateway.api_key,
        "flavour": flavour,
        "model": upstream.chat_model,
        "embeddingModel": upstream.embedding_model,
    }
    node = subprocess.Popen(
        ["node", str(clients.script("vercel_ai.mjs")), orjson.dumps(spec).decode()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=clients.directory,
    )
    assert node.stdin is not None and node.stdout is not None and node.stderr is not None
    deadline = threading.Timer(NODE_TIMEOUT, node.kill)
    deadline.start()
    try:
        for line in node.stdout:
            message = orjson.loads(line)
            if "pause" not in message:
                result: Report = message
                break
            # A tool round trip comes next: its first answer is a tool call.
            upstream.script_tool_call("get_weather", {"city": "Paris"})
            node.stdin.write("go\n")
            node.stdin.flush()
        else:
            raise AssertionError(f"vercel_ai.mjs ended without a report: {node.stderr.read()[-2000:]}")
        assert node.wait() == 0, node.stderr.read()[-2000:]
    finally:
        deadline.cancel()
        node.kill()
        node.wait()
    return result


def _capability(report: Report, name: str) -> Report:
    outcome: Report = report[name]
    assert "error" not in outcome, outcome
    return outcome


def test_invoke(report: Report) -> None:
    outcome = _capability(report, "invoke")
    assert "Say hello" in outcome["text"]
    assert outcome["finishReason"] == "stop"
    assert outcome["usage"]["inputTokens"] > 0 and outcome["usage"]["outputTokens"] > 0


def test_stream_with_usage(report: Report) -> None:
    outcome = _capability(report, "stream")
    assert "Stream hello" in outcome["text"] and outcome["pieces"] > 1
    assert outcome["finishReason"] == "stop"
    assert outcome["usage"]["inputTokens"] > 0 and outcome["usage"]["outputTokens"] > 0


@pytest.mark.parametrize("capability", ["tools", "tools_stream"], ids=["unary", "streamed"])
def test_tool_round_trip(report: Report, capability: str) -> None:
    outcome = _capability(report, capability)
    assert outcome["toolCalls"] == [{"name": "get_weather", "input": {"city": "Paris"}}]
    assert outcome["toolResults"] == ["SUNNY-42 in Paris"]
    assert outcome["steps"] == 2 and "SUNNY-42 in Paris" in outcome["text"]


def test_structured_output_by_json_schema(report: Report) -> None:
    outcome = _capability(report, "structured_json_schema")
    assert isinstance(outcome["object"]["city"], str) and isinstance(outcome["object"]["celsius"], int)


def test_structured_output_streamed(report: Report) -> None:
    outcome = _capability(report, "structured_stream")
    assert outcome["partials"] >= 1
    assert isinstance(outcome["object"]["city"], str) and isinstance(outcome["object"]["celsius"], int)
    assert outcome["usage"]["inputTokens"] > 0


def test_structured_output_by_forced_tool(report: Report) -> None:
    outcome = _capability(report, "structured_tool")
    [call] = outcome["toolCalls"]
    assert call["name"] == "Weather" and set(call["input"]) == {"city", "celsius"}


def test_embeddings(report: Report, upstream: UpstreamUnderTest) -> None:
    outcome = _capability(report, "embeddings")
    if upstream.embedding_model is None:
        assert "skipped" in outcome
        pytest.skip(f"the {upstream.name} upstream has no embeddings")
    assert outcome["count"] == 2 and outcome["dimensions"][0] > 0
    assert outcome["single"] == outcome["dimensions"][0]
