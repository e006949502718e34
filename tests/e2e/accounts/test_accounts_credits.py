"""Credits through the OpenAI SDK: 402 before the upstream, cost in usage, settle to actual, a ledger
record per request (failures too), a cancelled stream charged for what it produced, and /v1/key."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.e2e.accounts_harness import (
    IMAGE_PRICE,
    AccountsHarness,
    current_key,
    generation,
    running_accounts,
    sdk,
)
from tests.fakes.openai_upstream import ScriptedReply

MESSAGES = [{"role": "user", "content": "hi"}]
# 1000 prompt tokens at $1/M plus 500 completion tokens at $2/M.
SCRIPTED_USAGE = {"prompt_tokens": 1000, "completion_tokens": 500}
SCRIPTED_COST = 0.002


@pytest.fixture(scope="module", params=["in_process", "grpc_hop"])
def accounts(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AccountsHarness]:
    yield from running_accounts(request, tmp_path_factory)


def test_cost_is_in_usage_and_charged_to_the_key(accounts: AccountsHarness) -> None:
    _, secret = accounts.create_key(credit_limit=1.0)
    accounts.upstream.script_chat(ScriptedReply(content="hello", usage=SCRIPTED_USAGE))
    raw = sdk(accounts, secret).chat.completions.with_raw_response.create(
        model="gpt-priced", messages=MESSAGES, max_tokens=600
    )
    completion = raw.parse()
    assert completion.usage is not None
    assert completion.usage.model_extra is not None
    assert completion.usage.model_extra["cost"] == pytest.approx(SCRIPTED_COST, abs=1e-9)
    key = current_key(accounts, secret)
    assert key["usage"] == pytest.approx(SCRIPTED_COST, abs=1e-9)
    assert key["limit"] == 1.0 and key["reserved"] == 0
    assert key["limit_remaining"] == pytest.approx(1.0 - SCRIPTED_COST, abs=1e-9)

    record = generation(accounts, secret, raw.headers["x-request-id"])
    assert record.status_code == 200, record.text
    data = record.json()["data"]
    assert data["status"] == "success" and data["http_status"] == 200
    assert (
        data["model"] == "gpt-priced"
        and data["model_served"] == "gpt-4o-mini"
        and data["provider_name"] == "fake"
    )
    assert (data["tokens_prompt"], data["tokens_completion"]) == (1000, 500)
    assert data["total_cost"] == pytest.approx(SCRIPTED_COST, abs=1e-9)
    assert data["latency"] > 0 and data["streamed"] is False


def test_a_request_the_balance_cannot_cover_is_402_and_never_reaches_the_upstream(
    accounts: AccountsHarness,
) -> None:
    _, secret = accounts.create_key(credit_limit=0.001)
    before = len(accounts.upstream.requests_to("/v1/chat/completions"))
    with pytest.raises(openai.APIStatusError) as caught:
        # Worst case: 1000 completion tokens at $2/M = $0.002 > $0.001.
        sdk(accounts, secret).chat.completions.create(model="gpt-priced", messages=MESSAGES, max_tokens=1000)
    assert caught.value.status_code == 402
    assert caught.value.body["type"] == "insufficient_credits"  # type: ignore[index]
    assert caught.value.body["code"] == "insufficient_credits"  # type: ignore[index]
    assert len(accounts.upstream.requests_to("/v1/chat/completions")) == before
    record = generation(accounts, secret, caught.value.response.headers["x-request-id"]).json()["data"]
    assert record["status"] == "error" and record["http_status"] == 402
    assert record["error_code"] == "insufficient_credits" and record["total_cost"] == 0
    # A smaller worst case fits, and is settled to the actual usage.
    accounts.upstream.script_chat(
        ScriptedReply(content="ok", usage={"prompt_tokens": 10, "completion_tokens": 5})
    )
    sdk(accounts, secret).chat.completions.create(model="gpt-priced", messages=MESSAGES, max_tokens=100)
    assert current_key(accounts, secret)["usage"] == pytest.approx(0.00002, abs=1e-9)


def test_an_upstream_failure_refunds_everything_and_is_in_the_ledger(accounts: AccountsHarness) -> None:
    _, secret = accounts.create_key(credit_limit=0.5)
    with pytest.raises(openai.APIStatusError) as caught:
        sdk(accounts, secret).chat.completions.create(model="gpt-dead", messages=MESSAGES, max_tokens=100)
    assert caught.value.status_code in (502, 503)
    key = current_key(accounts, secret)
    assert key["usage"] == 0 and key["reserved"] == 0 and key["limit_remaining"] == 0.5
    record = generation(accounts, secret, caught.value.response.headers["x-request-id"]).json()["data"]
    assert record["status"] == "error" and record["http_status"] == caught.value.status_code
    assert record["total_cost"] == 0


def test_images_are_priced_per_image(accounts: AccountsHarness) -> None:
    _, secret = accounts.create_key(credit_limit=1.0)
    raw = httpx.post(
        f"{accounts.base_url}/images/generations",
        headers={"Authorization": f"Bearer {secret}"},
        json={"model": "image-priced", "prompt": "a cat", "n": 2},
        timeout=20,
    )
    assert raw.status_code == 200, raw.text
    assert raw.json()["usage"]["cost"] == pytest.approx(2 * IMAGE_PRICE)
    assert current_key(accounts, secret)["usage"] == pytest.approx(2 * IMAGE_PRICE)


def test_a_cancelled_stream_settles_what_was_streamed(accounts: AccountsHarness) -> None:
    _, secret = accounts.create_key(credit_limit=1.0)
    words = " ".join(f"word{i}" for i in range(40))
    accounts.upstream.script_chat(ScriptedReply(content=words, usage=SCRIPTED_USAGE))
    accounts.upstream.chunk_delay = 0.1
    try:
        with (
            httpx.Client(timeout=20) as client,
            client.stream(
                "POST",
                f"{accounts.base_url}/chat/completions",
                headers={"Authorization": f"Bearer {secret}"},
                json={
                    "model": "gpt-priced",
                    "messages": MESSAGES,
                    "stream": True,
                    "max_tokens": 600,
                    "stream_options": {"include_usage": True},
                },
            ) as response,
        ):
            assert response.status_code == 200
            request_id = response.headers["x-request-id"]
            seen = 0
            for line in response.iter_lines():
                if line.startswith("data: ") and '"content"' in line:
                    seen += 1
                    if seen == 3:
                        break
        record = generation(accounts, secret, request_id)
    finally:
        accounts.upstream.chunk_delay = 0.0
    assert record.status_code == 200, record.text
    data = record.json()["data"]
    assert data["status"] == "cancelled" and data["streamed"] is True and data["ttft"] is not None
    # Upstream usage never arrived: the streamed deltas were counted, far fewer than the 500 scripted.
    assert 0 < data["tokens_completion"] < 500
    assert data["total_cost"] > 0
    key = current_key(accounts, secret)
    assert key["usage"] == pytest.approx(data["total_cost"], abs=1e-9) and key["reserved"] == 0


def test_a_generation_is_visible_only_to_its_key(accounts: AccountsHarness) -> None:
    _, secret = accounts.create_key()
    _, other = accounts.create_key(name="other")
    raw = sdk(accounts, secret).chat.completions.with_raw_response.create(model="gpt-free", messages=MESSAGES)
    request_id = raw.headers["x-request-id"]
    assert generation(accounts, secret, request_id).status_code == 200
    response = generation(accounts, other, request_id, wait=0.5)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_current_key_shows_limits_and_never_the_secret_or_its_hash(accounts: AccountsHarness) -> None:
    from server.accounts.keys import hash_secret

    key_id, secret = accounts.create_key(name="viewer", credit_limit=2.5, rpm_limit=100, tpm_limit=50_000)
    response = httpx.get(f"{accounts.base_url}/key", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["id"] == key_id and data["name"] == "viewer" and data["limit"] == 2.5
    assert data["usage"] == 0 and data["limit_remaining"] == 2.5
    assert data["rate_limit"] == {"requests_per_minute": 100, "tokens_per_minute": 50_000}
    assert data["prefix"] == secret[:10]
    assert secret not in response.text and hash_secret(secret) not in response.text
    assert httpx.get(f"{accounts.base_url}/key").status_code == 401
