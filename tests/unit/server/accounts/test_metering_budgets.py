"""Budgets with periods and teams through AccountMetering, on a fake clock (no sleeping): a budget
rolls over at its boundary, a rolling one as its oldest spend leaves the window, a team's budget and
rpm hold across its keys, a global budget across every key, and a refusal names the level it hit.
Run on the shared SQLite store and on the owned one (its credits in memory, moved without I/O)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from server.accounts.accounting import AccountMetering
from server.accounts.budget_status import budget_status
from server.accounts.budgets import Budget, BudgetPeriod, BudgetReset, budget_level, key_scope
from server.accounts.keys import KeyManager, KeyRecord, NewKey
from server.accounts.ledger_writer import LedgerWriter
from server.accounts.memory_limits import MemoryLimitStore
from server.accounts.metering import Consumption, Demand
from server.accounts.owned_sqlite_accounts import OwnedSqliteAccountStore
from server.accounts.sqlite_accounts import SqliteAccountStore
from server.accounts.store import AccountStore
from server.accounts.teams import NewTeam, TeamChanges, TeamRecord
from server.errors import InsufficientCredits, RateLimited
from server.providers.base import RequestContext
from tests.unit.server.accounts.test_metering import DEPLOYMENT, ENTRY

# $2 per million reply tokens: a request of 1000 reply tokens holds and costs 2000 micro-dollars.
REQUEST = Demand(max_output_tokens=1000)
SPENT = Consumption(completion_tokens=1000)


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@dataclass
class FakeClock:
    now: float

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    metering: AccountMetering
    keys: KeyManager
    store: AccountStore
    clock: FakeClock

    async def key(self, **spec: object) -> KeyRecord:
        record, _ = await self.keys.create(NewKey(name="k", **spec))  # type: ignore[arg-type]
        return record

    async def team(self, **spec: object) -> TeamRecord:
        return await self.metering.teams.create(NewTeam(name="Research", **spec))  # type: ignore[arg-type]

    async def spend(self, key: KeyRecord, request_id: str) -> float | None:
        meter = await self.metering.admit(key, ENTRY, REQUEST, RequestContext(request_id))
        return await meter.settle(DEPLOYMENT, SPENT)


@pytest.fixture(params=["sqlite", "sqlite-owned"])
async def setup(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Setup]:
    store: AccountStore
    if request.param == "sqlite":
        store = SqliteAccountStore(tmp_path / "accounts.db")
    else:
        owned = OwnedSqliteAccountStore.try_open(tmp_path / "owned.db")
        assert owned is not None
        store = owned
    clock = FakeClock(at("2026-03-15T22:00:00"))
    metering = AccountMetering(
        store, MemoryLimitStore(), LedgerWriter(store, flush_interval=0.01), clock=clock
    )
    yield Setup(metering, KeyManager(store), store, clock)
    await metering.close()


async def test_a_daily_budget_rolls_over_at_utc_midnight(setup: Setup) -> None:
    key = await setup.key(budget=Budget(3_000, BudgetPeriod.DAY, BudgetReset.CALENDAR))
    assert await setup.spend(key, "r1") == pytest.approx(0.002)
    with pytest.raises(InsufficientCredits) as refused:
        await setup.metering.admit(key, ENTRY, REQUEST, RequestContext("r2"))
    assert "this key's daily budget of $0.003000" in refused.value.message
    assert "resets at 2026-03-16T00:00:00Z" in refused.value.message
    setup.clock.now = at("2026-03-15T23:59:59")
    with pytest.raises(InsufficientCredits):
        await setup.metering.admit(key, ENTRY, REQUEST, RequestContext("r3"))
    setup.clock.now = at("2026-03-16T00:00:00")
    assert await setup.spend(key, "r4") == pytest.approx(0.002)
    # The key has no lifetime limit: it spent both days' worth.
    balance = await setup.store.balance(key.id)
    assert balance is not None and balance.used == 4_000


async def test_a_rolling_budget_frees_spend_as_it_leaves_the_window(setup: Setup) -> None:
    key = await setup.key(budget=Budget(3_000, BudgetPeriod.DAY, BudgetReset.ROLLING))
    start = setup.clock.now
    assert await setup.spend(key, "r1") is not None
    setup.clock.now = start + 23 * 3600  # past midnight, but within the trailing 24 hours
    with pytest.raises(InsufficientCredits) as refused:
        await setup.metering.admit(key, ENTRY, REQUEST, RequestContext("r2"))
    assert "per 24 hours (rolling)" in refused.value.message
    setup.clock.now = start + 24 * 3600 + 15 * 60  # a bucket (15 minutes) after it left
    assert await setup.spend(key, "r3") is not None


async def test_a_team_budget_holds_across_its_keys_and_rolls_over(setup: Setup) -> None:
    team = await setup.team(budget=Budget(5_000, BudgetPeriod.DAY, BudgetReset.CALENDAR))
    first, second = await setup.key(team_id=team.id), await setup.key(team_id=team.id)
    outsider = await setup.key()
    assert await setup.spend(first, "r1") is not None
    assert await setup.spend(second, "r2") is not None
    with pytest.raises(InsufficientCredits) as refused:
        await setup.metering.admit(first, ENTRY, REQUEST, RequestContext("r3"))
    assert "daily budget of $0.005000 (it resets at 2026-03-16T00:00:00Z) of its team 'Research'" in (
        refused.value.message
    )
    assert await setup.spend(outsider, "r4") is not None  # not the team's: not held back
    setup.clock.now = at("2026-03-16T00:00:01")
    assert await setup.spend(second, "r5") is not None


async def test_a_team_credit_limit_is_for_all_time(setup: Setup) -> None:
    team = await setup.team(credit_limit=4_000)
    first, second = await setup.key(team_id=team.id), await setup.key(team_id=team.id)
    assert await setup.spend(first, "r1") is not None
    assert await setup.spend(second, "r2") is not None
    setup.clock.now += 90 * 86_400
    with pytest.raises(InsufficientCredits) as refused:
        await setup.metering.admit(second, ENTRY, REQUEST, RequestContext("r3"))
    assert "the credit limit of its team 'Research' ($0.004000)" in refused.value.message
    # A failed request gives the team its hold back.
    await setup.metering.teams.update(team.id, TeamChanges(frozenset({"credit_limit"}), credit_limit=6_000))
    meter = await setup.metering.admit(first, ENTRY, REQUEST, RequestContext("r4"))
    await meter.fail(RuntimeError("upstream down"))
    assert await setup.spend(second, "r5") is not None


async def test_a_key_fits_both_its_own_budget_and_its_teams(setup: Setup) -> None:
    team = await setup.team(budget=Budget(100_000, BudgetPeriod.MONTH, BudgetReset.CALENDAR))
    key = await setup.key(team_id=team.id, budget=Budget(2_000, BudgetPeriod.WEEK, BudgetReset.CALENDAR))
    assert await setup.spend(key, "r1") is not None
    with pytest.raises(InsufficientCredits) as refused:
        await setup.metering.admit(key, ENTRY, REQUEST, RequestContext("r2"))
    assert "this key's weekly budget" in refused.value.message
    setup.clock.now = at("2026-03-16T00:00:00")  # a Monday: a new week
    assert await setup.spend(key, "r3") is not None


async def test_a_global_budget_caps_every_key(setup: Setup) -> None:
    setup.metering.global_budget = Budget(4_000, BudgetPeriod.DAY, BudgetReset.CALENDAR)
    keys = [await setup.key() for _ in range(3)]
    assert await setup.spend(keys[0], "r1") is not None
    assert await setup.spend(keys[1], "r2") is not None
    with pytest.raises(InsufficientCredits) as refused:
        await setup.metering.admit(keys[2], ENTRY, REQUEST, RequestContext("r3"))
    assert "the gateway's daily budget" in refused.value.message
    setup.clock.now = at("2026-03-16T00:00:00")
    assert await setup.spend(keys[2], "r4") is not None


async def test_a_team_rpm_caps_the_sum_of_its_keys(setup: Setup) -> None:
    team = await setup.team(rpm_limit=2)
    first, second = await setup.key(team_id=team.id), await setup.key(team_id=team.id, rpm_limit=100)
    assert await setup.spend(first, "r1") is not None
    assert await setup.spend(second, "r2") is not None
    with pytest.raises(RateLimited) as refused:
        await setup.metering.admit(second, ENTRY, REQUEST, RequestContext("r3"))
    assert "this key's team 'Research': 2 requests per minute" in refused.value.message
    assert refused.value.headers is not None and refused.value.headers["x-ratelimit-limit-requests"] == "2"
    setup.clock.now += 30  # one request back every 30 s
    assert await setup.spend(first, "r4") is not None


async def test_spend_in_the_current_period_is_visible(setup: Setup) -> None:
    budget = Budget(10_000, BudgetPeriod.DAY, BudgetReset.CALENDAR)
    key = await setup.key(budget=budget)
    await setup.spend(key, "r1")
    meter = await setup.metering.admit(key, ENTRY, REQUEST, RequestContext("r2"))  # in flight
    level = budget_level(key_scope(key.id, budget), budget, setup.clock())
    [spend] = await setup.store.spent([level])
    status = budget_status(budget, spend, setup.clock())
    assert (status.spend.used, status.spend.reserved, status.remaining) == (2_000, 2_000, 6_000)
    assert status.window.resets_at == at("2026-03-16T00:00:00")
    await meter.settle(DEPLOYMENT, Consumption(completion_tokens=10))
    [spend] = await setup.store.spent([level])
    assert (spend.used, spend.reserved) == (2_020, 0)
