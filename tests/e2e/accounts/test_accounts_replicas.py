"""Two gateway processes on one Postgres and one Redis: a key never overspends, its rpm holds across
both, and the ledger sums to the balance change. Also: a killed gateway (SQLite) keeps keys and
balances when started again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.accounts.money import usd_to_micros
from server.accounts.postgres_accounts import PostgresAccountStore
from tests.e2e.accounts_harness import IMAGE_PRICE, AccountsHarness, GatewayProcess, admin, postgres_replicas
from tests.unit.server.accounts.accounts_backends import (
    postgres_unavailable,
    redis_unavailable,
)

N = 5  # requests the key can pay for


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AccountsHarness]:
    harness = AccountsHarness(tmp_path_factory.mktemp("replicas"), in_process=True).start(gateway=False)
    yield harness
    harness.stop()


@pytest.fixture(scope="module")
def replicas(upstreams: AccountsHarness) -> Iterator[tuple[str, list[GatewayProcess]]]:
    reason = postgres_unavailable() or redis_unavailable()
    if reason:
        pytest.skip(reason)
    with postgres_replicas(upstreams) as (dsn, gateways):
        yield dsn, gateways


async def _fire(requests: list[tuple[str, str, dict[str, object]]], secret: str) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200)) as client:
        return await asyncio.gather(
            *(
                client.post(f"{base}{path}", headers={"Authorization": f"Bearer {secret}"}, json=body)
                for base, path, body in requests
            )
        )


def test_no_overspend_across_replicas(replicas: tuple[str, list[GatewayProcess]]) -> None:
    dsn, gateways = replicas
    created = admin(
        "POST", f"{gateways[0].base_url}/keys", json={"name": "shared", "credit_limit": N * IMAGE_PRICE}
    )
    assert created.status_code == 200, created.text
    key_id, secret = created.json()["id"], created.json()["secret"]
    body = {"model": "image-priced", "prompt": "a cat", "n": 1}
    requests = [(gateways[i % 2].base_url, "/images/generations", body) for i in range(20 * N)]
    responses = asyncio.run(_fire(requests, secret))
    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(200) == N, statuses
    assert statuses.count(402) == 20 * N - N, statuses
    assert all(r.json()["error"]["code"] == "insufficient_credits" for r in responses if r.status_code == 402)
    # Both replicas served some of the successes or refusals.
    assert {r.url.port for r in responses} == {httpx.URL(g.base_url).port for g in gateways}

    async def ledger() -> tuple[int, int, int, int]:
        store = await PostgresAccountStore.open(dsn, max_size=2)
        try:
            for _ in range(100):  # the replicas flush every 50 ms
                rows = await store._pool.fetchval(
                    "SELECT count(*) FROM usage_ledger WHERE key_id = $1", key_id
                )
                if rows == 20 * N:
                    break
                await asyncio.sleep(0.1)
            balance = await store.balance(key_id)
            assert balance is not None
            return rows, await store.ledger_sum(key_id), balance.used, balance.reserved
        finally:
            await store.close()

    rows, ledger_sum, used, reserved = asyncio.run(ledger())
    assert rows == 20 * N  # one record per request, refusals included
    assert ledger_sum == used == N * usd_to_micros(IMAGE_PRICE)
    assert reserved == 0


def test_rpm_holds_across_replicas(replicas: tuple[str, list[GatewayProcess]]) -> None:
    _, gateways = replicas
    rpm = 5
    created = admin("POST", f"{gateways[1].base_url}/keys", json={"name": "limited", "rpm_limit": rpm})
    secret = created.json()["secret"]
    body = {"model": "gpt-free", "messages": [{"role": "user", "content": "hi"}]}
    started = time.monotonic()
    responses = asyncio.run(
        _fire([(gateways[i % 2].base_url, "/chat/completions", body) for i in range(20)], secret)
    )
    elapsed = time.monotonic() - started
    accepted = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(accepted) + len(refused) == 20
    # A full bucket admits rpm at once, then one more per 60/rpm seconds: never more, whichever replica.
    assert rpm <= len(accepted) <= rpm + int(elapsed * rpm / 60)
    for response in refused:
        assert response.headers["x-ratelimit-limit-requests"] == str(rpm)
        assert response.headers["x-ratelimit-remaining-requests"] == "0"
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["error"]["type"] == "rate_limit_error"


def test_a_killed_gateway_keeps_keys_and_balances(upstreams: AccountsHarness, tmp_path: Path) -> None:
    config = tmp_path / "sqlite.yaml"
    config.write_text(upstreams.config().replace(str(upstreams.tmp_dir / "data"), str(tmp_path / "data")))
    first = GatewayProcess(config)
    try:
        created = admin("POST", f"{first.base_url}/keys", json={"name": "durable", "credit_limit": 1})
        secret = created.json()["secret"]
        ok = httpx.post(
            f"{first.base_url}/images/generations",
            headers={"Authorization": f"Bearer {secret}"},
            json={"model": "image-priced", "prompt": "a dog"},
            timeout=20,
        )
        assert ok.status_code == 200
    finally:
        first.kill()
    second = GatewayProcess(config)
    try:
        response = httpx.get(
            f"{second.base_url}/key", headers={"Authorization": f"Bearer {secret}"}, timeout=20
        )
        assert response.status_code == 200
        assert response.json()["data"]["usage"] == pytest.approx(IMAGE_PRICE)
        assert response.json()["data"]["limit_remaining"] == pytest.approx(1 - IMAGE_PRICE)
    finally:
        second.stop()
