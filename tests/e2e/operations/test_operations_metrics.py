"""GET /metrics after a scripted mix of requests: exact counter deltas and bounded label sets."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.operations_harness import OperationsHarness, Series, delta

CHAT = "/v1/chat/completions"
CHAT_SERVICE = "siraya.router.v1.ChatService"


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperationsHarness]:
    harness = OperationsHarness(tmp_path_factory.mktemp("ops_metrics"), in_process=True).start()
    yield harness
    harness.stop()


def _chat(ops: OperationsHarness, model: str, **extra: object) -> httpx.Response:
    return httpx.post(
        ops.root_url + CHAT,
        json={"model": model, "messages": [{"role": "user", "content": "hello there"}], **extra},
        headers={"Authorization": f"Bearer {ops.api_key}"},
        timeout=30,
    )


def test_a_scripted_mix_moves_each_series_by_exactly_what_happened(ops: OperationsHarness) -> None:
    before = ops.scrape()
    limited_calls = len(ops.limited.requests)
    usages = []
    for _ in range(2):
        reply = _chat(ops, "gpt-test")
        assert reply.status_code == 200
        usages.append(reply.json()["usage"])
    chunks = []
    with httpx.stream(
        "POST",
        ops.root_url + CHAT,
        json={
            "model": "gpt-test",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "hello there"}],
        },
        headers={"Authorization": f"Bearer {ops.api_key}"},
        timeout=30,
    ) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: {"):
                chunks.append(httpx.Response(200, content=line[6:]).json())
    usages.append(chunks[-1]["usage"])
    refused = _chat(ops, "gpt-limited")
    assert refused.status_code == 429
    # The first deployment answers 429, the second serves: one fallback.
    fell_back = _chat(ops, "gpt-fallback", provider={"order": ["limited", "fake"]})
    assert fell_back.status_code == 200
    assert fell_back.json()["provider"] == "fake"
    assert _chat(ops, "no-such-model").status_code == 404
    bad_json = httpx.post(
        ops.root_url + CHAT,
        content=b"{not json",
        timeout=10,
        headers={"Authorization": f"Bearer {ops.api_key}", "Content-Type": "application/json"},
    )
    assert bad_json.status_code == 400
    after = ops.scrape()

    served = {"endpoint": CHAT, "model": "gpt-test", "provider": "fake"}
    assert delta(before, after, "siraya_requests_total", **served, status_class="2xx") == 3
    assert (
        delta(
            before,
            after,
            "siraya_requests_total",
            endpoint=CHAT,
            model="gpt-limited",
            provider="",
            status_class="4xx",
        )
        == 1
    )
    # The unknown model and the body that is not JSON: neither names a configured model.
    assert (
        delta(
            before, after, "siraya_requests_total", endpoint=CHAT, model="", provider="", status_class="4xx"
        )
        == 2
    )
    assert delta(before, after, "siraya_request_duration_seconds_count", **served) == 3
    assert delta(before, after, "siraya_time_to_first_token_seconds_count", **served) == 1
    assert delta(before, after, "siraya_refusals_total", endpoint=CHAT, code="rate_limit_exceeded") == 1
    assert delta(
        before, after, "siraya_tokens_total", model="gpt-test", provider="fake", type="input"
    ) == sum(u["prompt_tokens"] for u in usages)
    assert delta(
        before, after, "siraya_tokens_total", model="gpt-test", provider="fake", type="output"
    ) == sum(u["completion_tokens"] for u in usages)
    # The same prompt and reply each time, so the same price; a stream's usage chunk carries no cost.
    assert len({(u["prompt_tokens"], u["completion_tokens"]) for u in usages}) == 1
    assert delta(before, after, "siraya_cost_usd_total", model="gpt-test", provider="fake") == pytest.approx(
        3 * (usages[0].get("cost") or 0.0)
    )
    unary = {"grpc_type": "unary", "grpc_service": CHAT_SERVICE, "grpc_method": "CreateChatCompletion"}
    stream = {
        "grpc_type": "server_stream",
        "grpc_service": CHAT_SERVICE,
        "grpc_method": "StreamChatCompletion",
    }
    assert delta(before, after, "grpc_server_started_total", **unary) == 5
    assert delta(before, after, "grpc_server_handled_total", **unary, grpc_code="OK") == 3
    assert delta(before, after, "grpc_server_handled_total", **unary, grpc_code="RESOURCE_EXHAUSTED") == 1
    assert delta(before, after, "grpc_server_handled_total", **unary, grpc_code="NOT_FOUND") == 1
    assert delta(before, after, "grpc_server_handled_total", **stream, grpc_code="OK") == 1
    assert delta(before, after, "grpc_server_msg_sent_total", **stream) == len(chunks)
    assert delta(before, after, "grpc_server_handling_seconds_count", **unary) == 5
    assert delta(before, after, "siraya_upstream_attempts_total", provider="fake", outcome="ok") == 4
    # gpt-limited's attempt and gpt-fallback's first (retries of one deployment are off by default).
    limited_attempts = delta(
        before, after, "siraya_upstream_attempts_total", provider="limited", outcome="rate_limit_exceeded"
    )
    assert limited_attempts == len(ops.limited.requests) - limited_calls == 2
    assert (
        delta(before, after, "siraya_upstream_fallbacks_total", from_provider="limited", to_provider="fake")
        == 1
    )
    assert delta(before, after, "siraya_upstream_retries_total", provider="limited") == 0
    assert (
        delta(
            before,
            after,
            "siraya_requests_total",
            endpoint=CHAT,
            model="gpt-fallback",
            provider="fake",
            status_class="2xx",
        )
        == 1
    )


def test_no_label_carries_a_key_a_prompt_or_a_user(ops: OperationsHarness) -> None:
    assert _chat(ops, "gpt-test").status_code == 200
    series = ops.scrape()
    label_names = {
        name: {label for label, _ in labels}
        for (name, labels) in series
        if name.startswith("siraya_requests")
    }
    assert label_names["siraya_requests_total"] == {"endpoint", "model", "provider", "status_class"}
    values = {value for (_, labels) in series for _, value in labels}
    assert ops.key_id not in values
    assert not any(ops.api_key in value or "hello" in value for value in values)


def _series_value(series: Series, name: str, **labels: str) -> float:
    return series.get((name, frozenset(labels.items())), 0.0)


def test_open_streams_counts_a_stream_while_it_is_open(ops: OperationsHarness) -> None:
    before = _series_value(ops.scrape(), "siraya_open_streams", endpoint=CHAT)
    ops.fake.chunk_delay = 0.3
    first_chunk = threading.Event()
    finish = threading.Event()

    def consume() -> None:
        with httpx.stream(
            "POST",
            ops.root_url + CHAT,
            json={"model": "gpt-test", "stream": True, "messages": [{"role": "user", "content": "a b c d"}]},
            headers={"Authorization": f"Bearer {ops.api_key}"},
            timeout=30,
        ) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    first_chunk.set()
        finish.set()

    reader = threading.Thread(target=consume)
    reader.start()
    try:
        assert first_chunk.wait(20)
        during = _series_value(ops.scrape(), "siraya_open_streams", endpoint=CHAT)
        assert finish.wait(20)
    finally:
        ops.fake.chunk_delay = 0.0
        reader.join(20)
    after = _series_value(ops.scrape(), "siraya_open_streams", endpoint=CHAT)
    assert (during - before, after - before) == (1, 0)
