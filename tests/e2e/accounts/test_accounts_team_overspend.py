"""A team budget is a limit across its keys (#18 item 6): 20·N concurrent requests from keys that share
a team's budget never charge more than it, on SQLite (one gateway) and on two gateway processes
sharing one Postgres and one Redis, with a well-behaved upstream. Also: a team's rpm holds across
both replicas.

Images cost exactly IMAGE_PRICE each, so a budget of N images admits exactly N. Chats with long
prompts and no max_tokens (half of them streamed) reserve a true upper bound and have their reply
capped: the total charged stays within the budget.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from server.accounts.budgets import Budget, BudgetPeriod, BudgetReset, team_budget_scope
from server.accounts.money import usd_to_micros
from server.accounts.postgres_accounts import PostgresAccountStore
from tests.e2e.accounts.test_accounts_overspend import PROMPT
from tests.e2e.accounts_harness import IMAGE_PRICE, AccountsHarness, GatewayProcess, admin, postgres_replicas
from tests.unit.server.accounts.accounts_backends import (
    postgres_unavailable,
    redis_unavailable,
)

N = 5  # images the team's budget pays for
KEYS = 4
CHAT_BUDGET = 0.05  # USD; gpt-priced costs $1/M prompt and $2/M reply tokens
CHATS = 200


def _team_with_keys(base: str, budget_usd: float, period: str = "day") -> tuple[str, list[tuple[str, str]]]:
    """A team whose budget is `budget_usd` per `period`, and KEYS keys in it: (team id, [(id, secret)])."""
    team = admin(
        "POST", f"{base}/teams", json={"name": "shared", "budget": {"limit": budget_usd, "period": period}}
    )
    assert team.status_code == 200, team.text
    team_id = team.json()["id"]
    keys = []
    for i in range(KEYS):
        created = admin("POST", f"{base}/keys", json={"name": f"member-{i}", "team_id": team_id})
        assert created.status_code == 200, created.text
        keys.append((created.json()["id"], created.json()["secret"]))
    return team_id, keys


async def _fire(requests: list[tuple[str, str, str, dict[str, Any]]]) -> list[httpx.Response]:
    """(base url, path, secret, body) each, all at once."""
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=len(requests))) as client:
        return await asyncio.gather(
            *(
                client.post(f"{base}{path}", headers={"Authorization": f"Bearer {secret}"}, json=body)
                for base, path, secret, body in requests
            )
        )


def _images(bases: list[str], keys: list[tuple[str, str]]) -> list[tuple[str, str, str, dict[str, Any]]]:
    body = {"model": "image-priced", "prompt": "a cat", "n": 1}
    return [(bases[i % len(bases)], "/images/generations", keys[i % KEYS][1], body) for i in range(20 * N)]


def _chats(bases: list[str], keys: list[tuple[str, str]]) -> list[tuple[str, str, str, dict[str, Any]]]:
    requests = []
    for i in range(CHATS):
        body: dict[str, Any] = {"model": "gpt-priced", "messages": [{"role": "user", "content": PROMPT}]}
        if i % 2:
            body["stream"] = True  # without include_usage
        requests.append((bases[i % len(bases)], "/chat/completions", keys[(i // 2) % KEYS][1], body))
    return requests


def _check_refusals(responses: list[httpx.Response]) -> int:
    statuses = [response.status_code for response in responses]
    served = statuses.count(200)
    assert served + statuses.count(402) == len(responses), sorted(set(statuses))
    for response in responses:
        if response.status_code == 402:
            error = response.json()["error"]
            assert error["code"] == "insufficient_credits"
            assert "of its team 'shared'" in error["message"], error["message"]
    return served


def _team_spend(base: str, team_id: str) -> dict[str, Any]:
    found = admin("GET", f"{base}/teams/{team_id}")
    assert found.status_code == 200, found.text
    return found.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def sqlite_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AccountsHarness]:
    harness = AccountsHarness(tmp_path_factory.mktemp("team-sqlite"), in_process=True).start()
    yield harness
    harness.stop()


def test_a_team_budget_admits_exactly_what_it_pays_for_on_sqlite(sqlite_gateway: AccountsHarness) -> None:
    base = sqlite_gateway.base_url
    team_id, keys = _team_with_keys(base, N * IMAGE_PRICE)
    responses = asyncio.run(_fire(_images([base], keys)))
    assert _check_refusals(responses) == N
    team = _team_spend(base, team_id)
    assert team["budget"]["spent"] == pytest.approx(N * IMAGE_PRICE)
    assert team["budget"]["reserved"] == 0 and team["budget"]["remaining"] == pytest.approx(0)
    assert team["credit_used"] == pytest.approx(N * IMAGE_PRICE)
    used = sum(admin("GET", f"{base}/keys/{key_id}").json()["credit_used"] for key_id, _ in keys)
    assert used == pytest.approx(N * IMAGE_PRICE)  # every charge landed on one of its keys


def test_a_team_budget_is_never_overspent_by_uncapped_chats_on_sqlite(
    sqlite_gateway: AccountsHarness,
) -> None:
    base = sqlite_gateway.base_url
    team_id, keys = _team_with_keys(base, CHAT_BUDGET, period="month")
    responses = asyncio.run(_fire(_chats([base], keys)))
    served = _check_refusals(responses)
    assert 1 <= served < CHATS
    team = _team_spend(base, team_id)
    assert 0 < team["budget"]["spent"] <= CHAT_BUDGET and team["budget"]["reserved"] == 0
    assert team["budget"]["remaining"] >= 0
    assert sqlite_gateway.running is not None
    metering = sqlite_gateway.running.gateway.metering
    sqlite_gateway.run(metering.ledger.flush())  # type: ignore[attr-defined]
    ledger = sum(sqlite_gateway.run(metering.accounts.ledger_sum(key_id)) for key_id, _ in keys)  # type: ignore[attr-defined]
    assert ledger == usd_to_micros(team["budget"]["spent"])


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[GatewayProcess]]]:
    reason = postgres_unavailable() or redis_unavailable()
    if reason:
        pytest.skip(reason)
    upstreams = AccountsHarness(tmp_path_factory.mktemp("team-pg"), in_process=True).start(gateway=False)
    try:
        with postgres_replicas(upstreams) as (dsn, gateways):
            yield dsn, gateways
    finally:
        upstreams.stop()


async def _settled(dsn: str, key_ids: list[str], records: int, scope: str) -> tuple[int, int, int, int]:
    """Once the replicas' ledgers hold `records` rows for the keys: (ledger sum, keys' used, keys'
    reserved, the team budget's used), straight from Postgres."""
    store = await PostgresAccountStore.open(dsn, max_size=2)
    try:
        for _ in range(100):  # the replicas flush their ledgers every 50 ms
            rows = await store._pool.fetchval(
                "SELECT count(*) FROM usage_ledger WHERE key_id = ANY($1::text[])", key_ids
            )
            if rows == records:
                break
            await asyncio.sleep(0.1)
        ledger = sum([await store.ledger_sum(key_id) for key_id in key_ids])
        balances = [await store.balance(key_id) for key_id in key_ids]
        used = sum(balance.used for balance in balances if balance is not None)
        reserved = sum(balance.reserved for balance in balances if balance is not None)
        spent = await store._pool.fetchval(
            "SELECT COALESCE(sum(used_micros), 0) FROM budget_spend WHERE scope = $1", scope
        )
        held = await store._pool.fetchval(
            "SELECT COALESCE(sum(reserved_micros), 0) FROM budget_spend WHERE scope = $1", scope
        )
        assert held == 0
        return ledger, used, reserved, int(spent)
    finally:
        await store.close()


def _scope(team_id: str, budget_usd: float, period: str) -> str:
    return team_budget_scope(
        team_id, Budget(usd_to_micros(budget_usd), BudgetPeriod(period), BudgetReset.CALENDAR)
    )


def test_a_team_budget_admits_exactly_what_it_pays_for_across_two_postgres_replicas(
    replicas: tuple[str, list[GatewayProcess]],
) -> None:
    dsn, gateways = replicas
    bases = [gateway.base_url for gateway in gateways]
    team_id, keys = _team_with_keys(bases[0], N * IMAGE_PRICE)
    responses = asyncio.run(_fire(_images(bases, keys)))
    assert _check_refusals(responses) == N
    assert {response.url.port for response in responses} == {httpx.URL(base).port for base in bases}
    key_ids = [key_id for key_id, _ in keys]
    ledger, used, reserved, spent = asyncio.run(
        _settled(dsn, key_ids, 20 * N, _scope(team_id, N * IMAGE_PRICE, "day"))
    )
    assert ledger == used == spent == N * usd_to_micros(IMAGE_PRICE)
    assert reserved == 0
    assert _team_spend(bases[1], team_id)["budget"]["spent"] == pytest.approx(N * IMAGE_PRICE)


def test_a_team_budget_is_never_overspent_by_uncapped_chats_across_two_postgres_replicas(
    replicas: tuple[str, list[GatewayProcess]],
) -> None:
    dsn, gateways = replicas
    bases = [gateway.base_url for gateway in gateways]
    team_id, keys = _team_with_keys(bases[0], CHAT_BUDGET, period="month")
    responses = asyncio.run(_fire(_chats(bases, keys)))
    served = _check_refusals(responses)
    assert 1 <= served < CHATS
    ledger, used, reserved, spent = asyncio.run(
        _settled(dsn, [key_id for key_id, _ in keys], CHATS, _scope(team_id, CHAT_BUDGET, "month"))
    )
    assert 0 < spent <= usd_to_micros(CHAT_BUDGET)
    assert ledger == used == spent and reserved == 0


def test_a_team_rpm_holds_across_replicas(replicas: tuple[str, list[GatewayProcess]]) -> None:
    _, gateways = replicas
    bases = [gateway.base_url for gateway in gateways]
    rpm = 5
    team = admin("POST", f"{bases[0]}/teams", json={"name": "paced", "rpm_limit": rpm}).json()
    secrets = [
        admin("POST", f"{bases[1]}/keys", json={"name": f"p{i}", "team_id": team["id"]}).json()["secret"]
        for i in range(3)
    ]
    body = {"model": "gpt-free", "messages": [{"role": "user", "content": "hi"}]}
    started = time.monotonic()
    responses = asyncio.run(
        _fire([(bases[i % 2], "/chat/completions", secrets[i % 3], body) for i in range(20)])
    )
    elapsed = time.monotonic() - started
    accepted = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(accepted) + len(refused) == 20
    # A full bucket admits rpm at once, then one more per 60/rpm seconds, whichever key and replica.
    assert rpm <= len(accepted) <= rpm + int(elapsed * rpm / 60)
    for response in refused:
        assert response.headers["x-ratelimit-limit-requests"] == str(rpm)
        assert "team 'paced'" in response.json()["error"]["message"]
