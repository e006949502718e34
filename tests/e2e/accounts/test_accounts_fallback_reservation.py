"""A limit is a limit across fallback models (#18): the reservation and the reply cap cover every model
a request may be served by, not only the one it names.

A limited key asks for gpt-dead (its upstream refuses connections) with gpt-dear as the fallback and
no max_tokens. gpt-dear's reply tokens cost 50 times gpt-dead's: a cap the credit pays for at
gpt-dead's price lets gpt-dear's reply cost three times the key's whole limit. The fake upstream echoes
the prompt back, one reply token per word, so a reply is as long as the cap allows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY

from server.accounts.money import usd_to_micros
from tests.e2e.accounts_harness import (
    DEAR_OUTPUT_PER_MILLION,
    INPUT_PER_MILLION,
    AccountsHarness,
    current_key,
    running_accounts,
)

LIMIT = 0.01  # USD: 10,000 micro-dollars
WORDS = 300
PROMPT = " ".join("abcdefghij"[i % 10] for i in range(WORDS))
# Micro-dollars per token.
DEAR_OUTPUT = round(DEAR_OUTPUT_PER_MILLION)
INPUT = round(INPUT_PER_MILLION)


@pytest.fixture(scope="module", params=["in_process", "grpc_hop"])
def accounts(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AccountsHarness]:
    yield from running_accounts(request, tmp_path_factory)


def _overruns() -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "siraya_credit_overruns"
        for sample in metric.samples
        if sample.name == "siraya_credit_overruns_total"
    )


def _post(accounts: AccountsHarness, secret: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{accounts.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json=body,
        timeout=30,
    )


def _stream_usage(response: httpx.Response) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    for line in response.text.splitlines():
        if line.startswith("data: {"):
            chunk = orjson.loads(line.removeprefix("data: "))
            usage = chunk.get("usage") or usage
    return usage


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_a_dearer_fallback_is_capped_at_what_the_credit_pays_for_at_its_price(
    accounts: AccountsHarness, stream: bool
) -> None:
    _, secret = accounts.create_key(credit_limit=LIMIT)
    overruns = _overruns()
    body: dict[str, Any] = {
        "model": "gpt-dead",
        "models": ["gpt-dead", "gpt-dear"],
        "messages": [{"role": "user", "content": PROMPT}],
    }
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    response = _post(accounts, secret, body)
    assert response.status_code == 200, response.text

    sent = accounts.upstream.requests_to("/v1/chat/completions")[-1].json
    assert sent["model"] == "gpt-4o"  # gpt-dear served
    cap = sent["max_tokens"]
    limit = usd_to_micros(LIMIT)
    # What the whole credit pays for at gpt-dear's reply price once the prompt's bound is paid: that
    # bound is at least the prompt's billed tokens (one per word) and at most its bytes and framing.
    least, most = (limit - (len(PROMPT) + 100) * INPUT) // DEAR_OUTPUT, (limit - WORDS * INPUT) // DEAR_OUTPUT
    assert least <= cap <= most, (least, cap, most)

    usage = _stream_usage(response) if stream else response.json()["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (WORDS, cap)  # the echo, cut at the cap
    assert usage["cost"] == pytest.approx((WORDS * INPUT + cap * DEAR_OUTPUT) / 1e6, abs=1e-9)
    assert usage["cost"] <= LIMIT
    key = current_key(accounts, secret)
    assert key["usage"] == pytest.approx(usage["cost"], abs=1e-9)
    assert key["reserved"] == 0 and key["limit_remaining"] >= 0
    assert _overruns() == overruns


def test_an_unpriced_fallback_is_refused_to_a_limited_key_before_the_upstream(
    accounts: AccountsHarness,
) -> None:
    body = {
        "model": "gpt-priced",
        "models": ["gpt-unpriced"],
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
    }
    _, limited = accounts.create_key(credit_limit=LIMIT)
    before = len(accounts.upstream.requests_to("/v1/chat/completions"))
    refused = _post(accounts, limited, body)
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["code"] == "model_not_priced" and "gpt-unpriced" in error["message"]
    assert len(accounts.upstream.requests_to("/v1/chat/completions")) == before
    key = current_key(accounts, limited)
    assert key["usage"] == 0 and key["reserved"] == 0
    # A key without a credit limit may name it: nothing it is charged needs a bound.
    _, unlimited = accounts.create_key()
    assert _post(accounts, unlimited, body).status_code == 200
