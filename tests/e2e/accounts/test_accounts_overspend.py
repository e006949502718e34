"""A limit is a limit (#18): 200 concurrent requests with long prompts and no max_tokens against a small
credit limit never charge more than the limit, on SQLite (one gateway) and on Postgres (two gateway
processes sharing one database), with a well-behaved upstream.

The prompt is made of one-letter words: the fake upstream bills one prompt token per word, twice the
old bytes/4 estimate, and echoes every word back, more than the old default reservation of 4,096
reply tokens. A reservation that is not a true upper bound, or a reply the gateway does not cap,
overspends here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from server.accounts.money import usd_to_micros
from server.accounts.postgres_accounts import PostgresAccountStore
from tests.e2e.accounts_harness import AccountsHarness, GatewayProcess, admin, current_key, postgres_replicas
from tests.unit.server.accounts.accounts_backends import (
    postgres_unavailable,
    redis_unavailable,
)

REQUESTS = 200
LIMIT = 0.05  # USD; gpt-priced costs $1/M prompt and $2/M reply tokens
WORDS = 5000
PROMPT = " ".join("abcdefghij"[i % 10] for i in range(WORDS))


def _body(i: int) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "gpt-priced", "messages": [{"role": "user", "content": PROMPT}]}
    if i % 2:
        body["stream"] = True  # half of them streamed, without include_usage
    return body


async def _fire(bases: list[str], secret: str) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=REQUESTS)) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"{bases[i % len(bases)]}/chat/completions",
                    headers={"Authorization": f"Bearer {secret}"},
                    json=_body(i),
                )
                for i in range(REQUESTS)
            )
        )


def _check_outcomes(responses: list[httpx.Response]) -> int:
    statuses = [response.status_code for response in responses]
    served = statuses.count(200)
    assert served + statuses.count(402) == REQUESTS, sorted(set(statuses))
    assert 1 <= served < REQUESTS
    for response in responses:
        if response.status_code == 402:
            assert response.json()["error"]["code"] == "insufficient_credits"
    return served


def test_a_small_limit_is_never_overspent_on_sqlite(tmp_path_factory: pytest.TempPathFactory) -> None:
    harness = AccountsHarness(tmp_path_factory.mktemp("overspend-sqlite"), in_process=True).start()
    try:
        key_id, secret = harness.create_key(credit_limit=LIMIT)
        responses = asyncio.run(_fire([harness.base_url], secret))
        served = _check_outcomes(responses)
        key = current_key(harness, secret)
        assert key["reserved"] == 0
        assert 0 < key["usage"] <= LIMIT
        assert key["limit_remaining"] >= 0
        replies = harness.upstream.requests_to("/v1/chat/completions")
        # The gateway capped every reply: the client sent no max_tokens.
        assert all(request.json.get("max_tokens") for request in replies[-served:])
        assert harness.running is not None
        store = harness.running.gateway.metering.accounts  # type: ignore[attr-defined]
        harness.run(harness.running.gateway.metering.ledger.flush())  # type: ignore[attr-defined]
        assert harness.run(store.ledger_sum(key_id)) == usd_to_micros(key["usage"])
    finally:
        harness.stop()


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[GatewayProcess]]]:
    reason = postgres_unavailable() or redis_unavailable()
    if reason:
        pytest.skip(reason)
    upstreams = AccountsHarness(tmp_path_factory.mktemp("overspend-pg"), in_process=True).start(gateway=False)
    try:
        with postgres_replicas(upstreams) as (dsn, gateways):
            yield dsn, gateways
    finally:
        upstreams.stop()


def test_a_small_limit_is_never_overspent_across_two_postgres_replicas(
    replicas: tuple[str, list[GatewayProcess]],
) -> None:
    dsn, gateways = replicas
    created = admin("POST", f"{gateways[0].base_url}/keys", json={"name": "small", "credit_limit": LIMIT})
    assert created.status_code == 200, created.text
    key_id, secret = created.json()["id"], created.json()["secret"]
    responses = asyncio.run(_fire([gateway.base_url for gateway in gateways], secret))
    _check_outcomes(responses)

    async def balance() -> tuple[int, int, int]:
        store = await PostgresAccountStore.open(dsn, max_size=2)
        try:
            for _ in range(100):  # the replicas flush their ledgers every 50 ms
                rows = await store._pool.fetchval(
                    "SELECT count(*) FROM usage_ledger WHERE key_id = $1", key_id
                )
                if rows == REQUESTS:
                    break
                await asyncio.sleep(0.1)
            found = await store.balance(key_id)
            assert found is not None
            return await store.ledger_sum(key_id), found.used, found.reserved
        finally:
            await store.close()

    ledger_sum, used, reserved = asyncio.run(balance())
    assert reserved == 0
    assert 0 < used <= usd_to_micros(LIMIT)
    assert ledger_sum == used
