"""Per-key rate limits through the OpenAI SDK: 429 with Retry-After and x-ratelimit-* headers, and the
same headers on accepted responses (unary and streamed)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.e2e.accounts_harness import AccountsHarness, generation, running_accounts, sdk
from tests.fakes.openai_upstream import ScriptedReply

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module", params=["in_process", "grpc_hop"])
def accounts(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AccountsHarness]:
    yield from running_accounts(request, tmp_path_factory)


def test_rpm_refuses_with_429_and_headers(accounts: AccountsHarness) -> None:
    _, secret = accounts.create_key(rpm_limit=3)
    client = sdk(accounts, secret)
    remaining = []
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(model="gpt-free", messages=MESSAGES)
        assert raw.headers["x-ratelimit-limit-requests"] == "3"
        remaining.append(int(raw.headers["x-ratelimit-remaining-requests"]))
        assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    assert remaining == [2, 1, 0]
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-free", messages=MESSAGES)
    response = caught.value.response
    assert response.status_code == 429
    assert caught.value.body["type"] == "rate_limit_error"  # type: ignore[index]
    assert caught.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
    # One request comes back every 20 s at 3 per minute.
    assert 1 <= int(response.headers["retry-after"]) <= 20
    assert response.headers["x-ratelimit-limit-requests"] == "3"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert "x-ratelimit-reset-requests" in response.headers
    assert "x-ratelimit-limit-tokens" not in response.headers
    record = generation(accounts, secret, response.headers["x-request-id"]).json()["data"]
    assert record["http_status"] == 429 and record["error_code"] == "rate_limit_exceeded"


def test_tpm_counts_the_estimate_then_the_actual_tokens(accounts: AccountsHarness) -> None:
    _, secret = accounts.create_key(tpm_limit=1000)
    client = sdk(accounts, secret)
    # Admission takes the worst case (prompt estimate + max_tokens) from the bucket...
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-free", messages=MESSAGES, max_tokens=900
    )
    assert raw.headers["x-ratelimit-limit-tokens"] == "1000"
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) < 100
    # ...and settling gives back what was not used, so the same request fits again at once.
    accounts.upstream.script_chat(
        ScriptedReply(content="long", usage={"prompt_tokens": 10, "completion_tokens": 990})
    )
    client.chat.completions.create(model="gpt-free", messages=MESSAGES, max_tokens=900)
    # That one really used 1000 tokens: now the bucket is empty.
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-free", messages=MESSAGES, max_tokens=900)
    headers = caught.value.response.headers
    assert headers["x-ratelimit-limit-tokens"] == "1000"
    assert int(headers["x-ratelimit-remaining-tokens"]) < 900
    assert int(headers["retry-after"]) >= 1


def test_a_streamed_response_carries_the_headers(accounts: AccountsHarness) -> None:
    _, secret = accounts.create_key(rpm_limit=10)
    with httpx.stream(
        "POST",
        f"{accounts.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json={"model": "gpt-free", "messages": MESSAGES, "stream": True},
        timeout=20,
    ) as response:
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit-requests"] == "10"
        assert response.headers["x-ratelimit-remaining-requests"] == "9"
        response.read()


def test_unlimited_keys_get_no_rate_limit_headers(accounts: AccountsHarness) -> None:
    _, secret = accounts.create_key()
    raw = sdk(accounts, secret).chat.completions.with_raw_response.create(model="gpt-free", messages=MESSAGES)
    assert not any(name.startswith("x-ratelimit") for name in raw.headers)
