"""One JSON access line per request, with what served it and never a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from server.observability.logs import configure_logging, unconfigure_logging
from tests.e2e.operations_harness import UPSTREAM_KEY, OperationsHarness, delta


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperationsHarness]:
    harness = OperationsHarness(tmp_path_factory.mktemp("ops_logs"), in_process=False).start()
    yield harness
    harness.stop()


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("info", "json", secrets=[UPSTREAM_KEY], stream=stream)
    yield stream
    unconfigure_logging(handler)
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_request_logs_one_line_with_what_served_it(
    ops: OperationsHarness, captured: io.StringIO
) -> None:
    headers = {"Authorization": f"Bearer {ops.api_key}"}
    unary = httpx.post(
        ops.root_url + "/v1/chat/completions",
        timeout=30,
        json={"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]},
        headers={**headers, "X-Request-Id": "req-logs-unary"},
    )
    # The client's id is echoed beside the gateway's own, which names the request everywhere else.
    assert unary.headers["X-Client-Request-Id"] == "req-logs-unary"
    assert unary.headers["X-Request-Id"].startswith("req_")
    with httpx.stream(
        "POST",
        ops.root_url + "/v1/chat/completions",
        timeout=30,
        json={"model": "gpt-test", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
        headers={**headers, "X-Request-Id": "req-logs-stream"},
    ) as stream:
        body = stream.read()
    assert b"[DONE]" in body
    refused = httpx.post(
        ops.root_url + "/v1/chat/completions",
        timeout=30,
        json={"model": "gpt-limited", "messages": [{"role": "user", "content": "hi"}]},
        headers={**headers, "X-Request-Id": "req-logs-429"},
    )
    assert refused.status_code == 429

    lines = _lines(captured)
    by_id = {
        rid: [line for line in lines if line.get("client_request_id") == rid]
        for rid in ("req-logs-unary", "req-logs-stream", "req-logs-429")
    }
    assert {rid: len(found) for rid, found in by_id.items()} == dict.fromkeys(by_id, 1)
    usage = unary.json()["usage"]
    first = by_id["req-logs-unary"][0]
    assert (first["msg"], first["level"], first["model"], first["provider"], first["status"]) == (
        "request",
        "info",
        "gpt-test",
        "fake",
        200,
    )
    assert first["key_id"] == ops.key_id
    assert first["request_id"] == unary.headers["X-Request-Id"]
    assert (first["prompt_tokens"], first["completion_tokens"]) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    assert first["latency_ms"] > 0 and first["ttft_ms"] is None
    streamed = by_id["req-logs-stream"][0]
    assert streamed["stream"] is True and streamed["status"] == 200
    assert 0 < streamed["ttft_ms"] <= streamed["latency_ms"]
    limited = by_id["req-logs-429"][0]
    assert (limited["status"], limited["code"], limited["model"]) == (
        429,
        "rate_limit_exceeded",
        "gpt-limited",
    )
    # Both ids reached the upstream with the call.
    assert ops.fake.requests[-1].headers["x-client-request-id"] == "req-logs-stream"
    assert ops.fake.requests[-1].headers["x-request-id"] == streamed["request_id"]


def test_no_secret_reaches_the_log(ops: OperationsHarness, captured: io.StringIO) -> None:
    stranger = "sk-sr-not-a-real-key-0123456789abcdef"
    assert (
        httpx.post(
            ops.root_url + "/v1/chat/completions",
            timeout=30,
            json={"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {stranger}"},
        ).status_code
        == 401
    )
    assert (
        httpx.post(
            ops.root_url + "/v1/chat/completions",
            timeout=30,
            json={"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {ops.api_key}"},
        ).status_code
        == 200
    )
    # Something that logs a secret on its own is redacted too, exception text included.
    try:
        raise RuntimeError(f"upstream said no to {UPSTREAM_KEY} and Bearer {ops.api_key}")
    except RuntimeError:
        logging.getLogger("siraya.server").exception("call failed with key %s", UPSTREAM_KEY)
    text = captured.getvalue()
    assert len(_lines(captured)) >= 3
    for secret in (stranger, ops.api_key, UPSTREAM_KEY):
        assert secret not in text
    assert "[REDACTED]" in text


def test_a_refusal_after_authentication_logs_the_key(ops: OperationsHarness, captured: io.StringIO) -> None:
    missing = httpx.post(
        ops.root_url + "/v1/chat/completions",
        timeout=30,
        json={"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {ops.api_key}", "X-Request-Id": "req-logs-404"},
    )
    assert missing.status_code == 404
    (line,) = [line for line in _lines(captured) if line.get("client_request_id") == "req-logs-404"]
    assert (line["status"], line["code"], line["key_id"]) == (404, "model_not_found", ops.key_id)


def test_account_rpcs_carry_their_own_labels(ops: OperationsHarness, captured: io.StringIO) -> None:
    before = ops.scrape()
    seen = httpx.get(
        ops.root_url + "/v1/key",
        timeout=30,
        headers={"Authorization": f"Bearer {ops.api_key}", "X-Request-Id": "req-logs-key"},
    )
    assert seen.status_code == 200, seen.text
    (line,) = [line for line in _lines(captured) if line.get("client_request_id") == "req-logs-key"]
    assert (line["endpoint"], line["rpc"], line["key_id"]) == (
        "/v1/key",
        "siraya.router.v1.AccountService/GetCurrentKey",
        ops.key_id,
    )
    after = ops.scrape()
    assert (
        delta(
            before,
            after,
            "siraya_requests_total",
            endpoint="/v1/key",
            model="",
            provider="",
            status_class="2xx",
        )
        == 1
    )
    assert (
        delta(
            before,
            after,
            "grpc_server_handled_total",
            grpc_type="unary",
            grpc_service="siraya.router.v1.AccountService",
            grpc_method="GetCurrentKey",
            grpc_code="OK",
        )
        == 1
    )
    assert not [
        key for key in after if key[0] == "siraya_requests_total" and ("endpoint", "/GetCurrentKey") in key[1]
    ]
