"""A Responses stream that fails part-way ends with spec-shaped terminal events."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import orjson

from tests.e2e.harness import GatewayHarness
from tests.fakes.openai_upstream import Fault
from tests.openapi_schema import assert_matches_schema


def _events(harness: GatewayHarness, model: str) -> list[tuple[str, dict[str, Any]]]:
    with httpx.stream(
        "POST",
        f"{harness.base_url}/responses",
        headers={"Authorization": f"Bearer {harness.api_key}"},
        json={"model": model, "input": "one two three four five six seven eight", "stream": True},
        timeout=20,
    ) as response:
        raw = response.read()
    assert response.status_code == 200, raw
    events = []
    for frame in raw.split(b"\n\n"):
        if not frame.strip():
            continue
        name, data = frame.split(b"\n", 1)
        assert name.startswith(b"event: ") and data.startswith(b"data: "), frame
        events.append((name[7:].decode(), orjson.loads(data[6:])))
    return events


def test_native_stream_cut_ends_with_a_numbered_error_event(harness: GatewayHarness) -> None:
    harness.native.inject(Fault(path="/v1/responses", reset_after_chunks=3))
    events = _events(harness, "gpt-test")
    kind, error = events[-1]
    assert kind == "error" and error["type"] == "error"
    assert_matches_schema(error, "ResponseErrorEvent")
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))


def test_chat_backed_stream_cut_ends_with_response_failed_then_error(harness: GatewayHarness) -> None:
    harness.chat_only.inject(Fault(path="/v1/chat/completions", reset_after_chunks=3))
    events = _events(harness, "gpt-translated")
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "response.created" and kinds[-2:] == ["response.failed", "error"], kinds
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    failed = events[-2][1]
    assert_matches_schema(failed, "ResponseFailedEvent")
    response = failed["response"]
    assert response["status"] == "failed" and response["error"]["code"] == "server_error"
    # What streamed before the cut (how much depends on when the reset lands) is kept, marked incomplete.
    assert all(item["status"] == "incomplete" for item in response["output"])
    texts = [data["delta"] for kind, data in events if kind == "response.output_text.delta"]
    streamed = [part["text"] for item in response["output"] for part in item["content"]]
    assert "".join(streamed) == "".join(texts)
    assert_matches_schema(events[-1][1], "ResponseErrorEvent")


def test_chat_backed_stream_failing_before_any_chunk_gets_a_real_status(harness: GatewayHarness) -> None:
    harness.chat_only.inject(Fault(path="/v1/chat/completions", status=429, headers={"Retry-After": "7"}))
    response = httpx.post(
        f"{harness.base_url}/responses",
        headers={"Authorization": f"Bearer {harness.api_key}"},
        json={"model": "gpt-translated", "input": "hi", "stream": True},
        timeout=20,
    )
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


def test_sdk_sees_response_failed_on_a_chat_backed_cut(
    client: openai.OpenAI, harness: GatewayHarness
) -> None:
    harness.chat_only.inject(Fault(path="/v1/chat/completions", reset_after_chunks=3))
    events = list(
        client.responses.create(model="gpt-translated", input="one two three four five", stream=True)
    )
    assert [event.type for event in events[-2:]] == ["response.failed", "error"]
    failed = events[-2]
    assert failed.type == "response.failed" and failed.response.error is not None
