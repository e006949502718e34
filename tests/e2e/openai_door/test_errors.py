"""Every row of the error table this foundation can produce: status and OpenAI body shape."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from server.accounts.keys import NewKey
from tests.e2e.harness import UPSTREAM_KEY, GatewayHarness
from tests.fakes.openai_upstream import Fault

CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


def post(harness: GatewayHarness, path: str, *, key: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key or harness.api_key}"}
    return httpx.post(f"{harness.base_url}{path}", headers=headers, timeout=20, **kwargs)


def assert_error(
    response: httpx.Response, status: int, type_: str, code: str | None, param: str | None = None
) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == type_
    assert body["error"]["code"] == code
    assert body["error"]["param"] == param
    assert body["error"]["message"]
    assert UPSTREAM_KEY not in response.text


def assert_still_serving(harness: GatewayHarness) -> None:
    assert post(harness, "/chat/completions", json=CHAT).status_code == 200


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "gpt-test"}, "messages", "missing_required_parameter"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model", "missing_required_parameter"),
        ({**CHAT, "temperature": "hot"}, "temperature", "invalid_type"),
        ({**CHAT, "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role", None),
        ({**CHAT, "messages": "hello"}, "messages", "invalid_type"),
    ],
)
def test_invalid_parameters_are_400_with_param(
    harness: GatewayHarness, body: dict, param: str, code: str | None
) -> None:
    response = post(harness, "/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    if code is not None:
        assert error["code"] == code
    assert_still_serving(harness)


def test_malformed_json_is_400(harness: GatewayHarness) -> None:
    response = post(harness, "/chat/completions", content=b'{"model": "gpt-test", "messages": [')
    assert_error(response, 400, "invalid_request_error", "invalid_json")
    assert_still_serving(harness)


def test_oversized_body_is_400(harness: GatewayHarness) -> None:
    huge = {**CHAT, "messages": [{"role": "user", "content": "x" * 100_000}]}
    assert_error(
        post(harness, "/chat/completions", json=huge), 400, "invalid_request_error", "request_too_large"
    )
    assert_still_serving(harness)


def test_unknown_route_is_400_and_wrong_method_405(harness: GatewayHarness) -> None:
    assert_error(post(harness, "/no/such/route", json={}), 400, "invalid_request_error", "unknown_url")
    response = httpx.delete(
        f"{harness.base_url}/chat/completions", headers={"Authorization": f"Bearer {harness.api_key}"}
    )
    assert_error(response, 405, "invalid_request_error", "method_not_allowed")
    assert response.headers["Allow"] == "POST"


def test_unknown_model_is_404(harness: GatewayHarness) -> None:
    response = post(harness, "/chat/completions", json={**CHAT, "model": "gpt-nonexistent"})
    assert_error(response, 404, "invalid_request_error", "model_not_found", "model")


def test_unknown_model_404_names_the_models_the_key_may_use(harness: GatewayHarness) -> None:
    response = post(harness, "/chat/completions", json={**CHAT, "model": "gpt-4o-mini"})
    message = response.json()["error"]["message"]
    # The chat models, in config order; embedding, image and video models are not offered for chat.
    assert message.endswith("Available models: gpt-test, gpt-translated, gpt-impatient, gpt-dead."), message
    embeddings = post(harness, "/embeddings", json={"model": "text-embedding-3-small", "input": "x"})
    assert embeddings.json()["error"]["message"].endswith("Available models: embed-test.")
    assert harness.running is not None
    _, restricted = harness.run(
        harness.running.gateway.keys.create(NewKey(name="only-gpt-test", allowed_models=("gpt-test",)))
    )
    limited = post(harness, "/chat/completions", key=restricted, json={**CHAT, "model": "gpt-4o-mini"})
    assert_error(limited, 404, "invalid_request_error", "model_not_found", "model")
    assert limited.json()["error"]["message"].endswith("Available models: gpt-test.")


@pytest.mark.parametrize("authorization", [None, "Bearer sk-sr-not-a-real-key-at-all", "Basic abc"])
def test_missing_or_bad_key_is_401(harness: GatewayHarness, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = httpx.post(f"{harness.base_url}/chat/completions", headers=headers, json=CHAT)
    assert_error(response, 401, "authentication_error", "invalid_api_key")


def test_revoked_key_is_401(harness: GatewayHarness) -> None:
    keys = harness.running.gateway.keys  # type: ignore[union-attr]
    record, secret = harness.run(keys.create(NewKey(name="short-lived")))
    assert post(harness, "/chat/completions", key=secret, json=CHAT).status_code == 200
    harness.run(keys.revoke(record.id))
    assert_error(
        post(harness, "/chat/completions", key=secret, json=CHAT),
        401,
        "authentication_error",
        "invalid_api_key",
    )


def test_model_not_allowed_for_key_is_403(harness: GatewayHarness) -> None:
    keys = harness.running.gateway.keys  # type: ignore[union-attr]
    _, secret = harness.run(keys.create(NewKey(name="embed-only", allowed_models=("embed-test",))))
    response = post(harness, "/chat/completions", key=secret, json=CHAT)
    assert_error(response, 403, "permission_error", "model_not_allowed", "model")


def test_upstream_timeout_is_408(harness: GatewayHarness) -> None:
    harness.native.inject(Fault(path="/v1/chat/completions", hang=2.0))
    response = post(harness, "/chat/completions", json={**CHAT, "model": "gpt-impatient"})
    assert_error(response, 408, "timeout_error", "request_timeout")


def test_upstream_rate_limit_is_429_with_retry_after(harness: GatewayHarness) -> None:
    harness.native.inject(
        Fault(
            path="/v1/chat/completions",
            status=429,
            error_type="rate_limit_error",
            error_code="rate_limit_exceeded",
            headers={"Retry-After": "7"},
        )
    )
    response = post(harness, "/chat/completions", json=CHAT)
    assert_error(response, 429, "rate_limit_error", "rate_limit_exceeded")
    assert response.headers["Retry-After"] == "7"


@pytest.mark.parametrize(
    "fault",
    [
        Fault(path="/v1/chat/completions", status=500),
        Fault(
            path="/v1/chat/completions",
            status=401,
            error_type="invalid_request_error",
            error_code="invalid_api_key",
        ),
        Fault(path="/v1/chat/completions", garbage=True),
    ],
    ids=["upstream-500", "upstream-rejects-our-key", "garbage-body"],
)
def test_upstream_failures_are_502(harness: GatewayHarness, fault: Fault) -> None:
    harness.native.inject(fault)
    response = post(harness, "/chat/completions", json=CHAT)
    assert_error(response, 502, "upstream_error", "provider_error")
    assert "sk-upstream" not in response.text
    assert_still_serving(harness)


def test_unreachable_upstream_is_502(harness: GatewayHarness) -> None:
    assert_error(
        post(harness, "/chat/completions", json={**CHAT, "model": "gpt-dead"}),
        502,
        "upstream_error",
        "provider_error",
    )


def test_no_provider_matching_filters_is_503(harness: GatewayHarness) -> None:
    response = post(harness, "/chat/completions", json={**CHAT, "provider": {"only": ["nobody"]}})
    assert_error(response, 503, "service_unavailable_error", "no_available_provider")


def test_model_of_the_wrong_kind_is_400(harness: GatewayHarness) -> None:
    response = post(harness, "/embeddings", json={"model": "gpt-test", "input": "x"})
    assert_error(response, 400, "invalid_request_error", "model_not_supported", "model")


def test_stream_failure_before_first_chunk_gets_a_real_status(harness: GatewayHarness) -> None:
    harness.native.inject(Fault(path="/v1/chat/completions", status=503))
    response = post(harness, "/chat/completions", json={**CHAT, "stream": True})
    assert_error(response, 502, "upstream_error", "provider_error")


def test_stream_failure_after_first_chunk_is_an_sse_error_event(
    client: openai.OpenAI, harness: GatewayHarness
) -> None:
    harness.native.inject(Fault(path="/v1/chat/completions", reset_after_chunks=2))
    stream = client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "one two three four five six"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk)
    assert received, "the first chunks should have reached the client"
    assert "provider" in str(caught.value.message).lower() or caught.value.body
    assert_still_serving(harness)


def test_stream_cut_before_done_is_an_error_event(harness: GatewayHarness) -> None:
    harness.native.inject(Fault(path="/v1/chat/completions", cut_before_done=True))
    with httpx.stream(
        "POST",
        f"{harness.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {harness.api_key}"},
        json={**CHAT, "stream": True},
    ) as response:
        raw = response.read().decode()
    assert response.status_code == 200
    assert '"error"' in raw.split("\n\n")[-2] and "data: [DONE]" not in raw


def test_client_disconnect_mid_stream_cancels_the_upstream_request(harness: GatewayHarness) -> None:
    before = harness.native.closed_early
    harness.native.chunk_delay = 0.05
    try:
        with httpx.stream(
            "POST",
            f"{harness.base_url}/chat/completions",
            headers={"Authorization": f"Bearer {harness.api_key}"},
            json={
                **CHAT,
                "messages": [{"role": "user", "content": " ".join(["word"] * 200)}],
                "stream": True,
            },
        ) as response:
            first = next(response.iter_lines())
            assert first.startswith("data: ")
        harness.run(harness.native.wait_closed_early(before + 1, timeout=5))
    finally:
        harness.native.chunk_delay = 0.0
    assert harness.native.closed_early == before + 1
    assert_still_serving(harness)
