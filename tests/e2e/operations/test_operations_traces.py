"""Traces: a request's span tree, GenAI attributes, and traceparent from the client to the upstream."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from server.observability import tracing
from tests.e2e.operations_harness import OperationsHarness

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


@pytest.fixture(scope="module", params=["in_process", "grpc_hop"])
def ops(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperationsHarness]:
    harness = OperationsHarness(
        tmp_path_factory.mktemp("ops_traces"), in_process=request.param == "in_process"
    ).start()
    yield harness
    harness.stop()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.enable(exporter)
    yield exporter
    tracing.disable()


def test_one_request_makes_a_server_span_with_one_client_span_per_attempt(
    ops: OperationsHarness, spans: InMemorySpanExporter
) -> None:
    reply = httpx.post(
        ops.root_url + "/v1/chat/completions",
        timeout=30,
        json={"model": "gpt-test", "messages": [{"role": "user", "content": "trace me"}]},
        headers={
            "Authorization": f"Bearer {ops.api_key}",
            "traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01",
            "X-Request-Id": "req-traced",
        },
    )
    assert reply.status_code == 200
    usage = reply.json()["usage"]
    finished = spans.get_finished_spans()
    servers = [span for span in finished if span.kind == SpanKind.SERVER]
    clients = [span for span in finished if span.kind == SpanKind.CLIENT]
    assert (len(servers), len(clients)) == (1, 1)
    server, client = servers[0], clients[0]
    assert server.name == "chat gpt-test"
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert format(server.parent.span_id, "016x") == CLIENT_SPAN
    assert client.context.trace_id == server.context.trace_id
    assert client.parent.span_id == server.context.span_id
    assert {
        key: server.attributes[key]
        for key in (
            "gen_ai.operation.name",
            "gen_ai.request.model",
            "gen_ai.response.model",
            "gen_ai.provider.name",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
            "siraya.request_id",
        )
    } == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-test",
        "gen_ai.response.model": "gpt-test",
        "gen_ai.provider.name": "fake",
        "gen_ai.usage.input_tokens": usage["prompt_tokens"],
        "gen_ai.usage.output_tokens": usage["completion_tokens"],
        "siraya.request_id": reply.headers["x-request-id"],
    }
    assert client.name == "chat gpt-4o-mini"
    assert client.attributes["gen_ai.provider.name"] == "fake"
    assert client.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert client.attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    upstream = ops.fake.requests[-1].headers
    assert upstream["traceparent"] == f"00-{TRACE_ID}-{format(client.context.span_id, '016x')}-01"
    assert upstream["x-request-id"] == reply.headers["x-request-id"]
    assert upstream["x-client-request-id"] == "req-traced"


def test_a_failed_attempt_is_an_error_span(ops: OperationsHarness, spans: InMemorySpanExporter) -> None:
    reply = httpx.post(
        ops.root_url + "/v1/chat/completions",
        timeout=30,
        json={"model": "gpt-limited", "messages": [{"role": "user", "content": "trace me"}]},
        headers={"Authorization": f"Bearer {ops.api_key}"},
    )
    assert reply.status_code == 429
    finished = spans.get_finished_spans()
    server = next(span for span in finished if span.kind == SpanKind.SERVER)
    clients = [span for span in finished if span.kind == SpanKind.CLIENT]
    assert server.attributes["error.type"] == "rate_limit_exceeded"
    assert clients and all(span.attributes["error.type"] == "rate_limit_exceeded" for span in clients)
    assert all(span.parent.span_id == server.context.span_id for span in clients)
    # Without a traceparent from the client, the server span starts the trace.
    assert server.parent is None


def test_tracing_off_passes_the_client_traceparent_through(ops: OperationsHarness) -> None:
    traceparent = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"
    reply = httpx.post(
        ops.root_url + "/v1/chat/completions",
        timeout=30,
        json={"model": "gpt-test", "messages": [{"role": "user", "content": "untraced"}]},
        headers={"Authorization": f"Bearer {ops.api_key}", "traceparent": traceparent},
    )
    assert reply.status_code == 200
    assert ops.fake.requests[-1].headers["traceparent"] == traceparent
