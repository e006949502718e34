# ruff: noqa: F811  (the fixtures are imported from the contract suite, and named by the tests)
"""The AccountStore contract for spend levels and teams, against every backend (SQLite, owned SQLite,
Postgres): a reservation fits the key and every level at once, settles and releases move every
level, windows count only their buckets, and teams own keys."""

from __future__ import annotations

import asyncio
import time

import pytest

from server.accounts.budgets import Budget, BudgetPeriod, BudgetReset, Spend, SpendLevel
from server.accounts.keys import KeyChanges
from server.accounts.store import AccountStore, Balance
from server.accounts.teams import TeamChanges, TeamRecord
from tests.unit.server.accounts.test_account_store_contract import (  # noqa: F401 (fixtures)
    Backend,
    _second_store,
    add_key,
    backend,
    store,
)

TEAM = "team:t1"
DAY_1, DAY_2 = 1_767_225_600, 1_767_312_000  # two calendar days (UTC midnights)


def level(limit: int | None, scope: str = TEAM, bucket: int = 0, since: int = 0) -> SpendLevel:
    return SpendLevel(scope, bucket, since, limit)


async def test_a_reservation_fits_the_key_and_every_level(store: AccountStore) -> None:
    key_id = await add_key(store, credit_limit=0.01)  # 10_000 micros
    levels = [level(3_000), level(None, "team:t1:day:calendar", DAY_1, DAY_1)]
    assert await store.reserve_up_to(key_id, "r1", 100, 2_000, levels) == 2_000
    assert await store.reserve_up_to(key_id, "r2", 100, 2_000, levels) == 1_000  # the team's rest
    assert await store.reserve_up_to(key_id, "r3", 1, 2_000, levels) is None
    assert await store.spent(levels) == [Spend(0, 3_000), Spend(0, 3_000)]
    assert await store.balance(key_id) == Balance(10_000, 0, 3_000)

    assert await store.settle(key_id, "r1", 1_500)
    assert not await store.settle(key_id, "r1", 1_500)  # once
    assert await store.release(key_id, "r2")
    assert not await store.release(key_id, "r2")
    assert await store.spent(levels) == [Spend(1_500, 0), Spend(1_500, 0)]
    assert await store.balance(key_id) == Balance(10_000, 1_500, 0)
    # A level without a limit counts and never refuses; an exhausted one refuses at once.
    assert await store.reserve_up_to(key_id, "r4", 1_500, 1_500, levels) == 1_500
    assert await store.reserve_up_to(key_id, "r5", 1, 1, levels) is None
    assert await store.reserve_up_to(key_id, "r4", 1, 1, levels) == 1_500  # a repeat: the open hold


async def test_a_level_shared_by_keys_is_never_overspent(store: AccountStore) -> None:
    keys = [await add_key(store) for _ in range(4)]
    shared = [level(10_000)]
    granted = await asyncio.gather(
        *(store.reserve_up_to(keys[i % 4], f"r{i}", 700, 3_000, shared) for i in range(40))
    )
    held = [amount for amount in granted if amount is not None]
    assert 10_000 - 700 < sum(held) <= 10_000
    assert await store.spent(shared) == [Spend(0, sum(held))]
    await asyncio.gather(
        *(store.settle(keys[i % 4], f"r{i}", 700) for i, amount in enumerate(granted) if amount is not None)
    )
    assert await store.spent(shared) == [Spend(700 * len(held), 0)]


async def test_windows_count_only_their_buckets(store: AccountStore) -> None:
    key_id = await add_key(store)
    day_1 = [level(1_000, "key:k:day:calendar", DAY_1, DAY_1)]
    day_2 = [level(1_000, "key:k:day:calendar", DAY_2, DAY_2)]
    assert await store.reserve_up_to(key_id, "d1", 1_000, 1_000, day_1) == 1_000
    assert await store.settle(key_id, "d1", 1_000)
    assert await store.reserve_up_to(key_id, "d1b", 1, 1, day_1) is None  # the day is spent
    assert await store.reserve_up_to(key_id, "d2", 1_000, 1_000, day_2) == 1_000  # the next is not
    assert await store.spent(day_1 + day_2) == [Spend(1_000, 0), Spend(0, 1_000)]
    # A window over both days (a rolling one) counts both.
    both = [level(5_000, "key:k:day:calendar", DAY_2, DAY_1)]
    assert await store.spent(both) == [Spend(1_000, 1_000)]
    assert await store.reserve_up_to(key_id, "w", 1, 10_000, both) == 3_000


async def test_an_overrun_leaves_a_level_short(store: AccountStore) -> None:
    key_id = await add_key(store)
    levels = [level(1_000)]
    assert await store.reserve_up_to(key_id, "r1", 500, 500, levels) == 500
    assert await store.settle(key_id, "r1", 1_300)  # billed beyond its hold: charged in full
    assert await store.spent(levels) == [Spend(1_300, 0)]
    assert await store.reserve_up_to(key_id, "r2", 0, 100, levels) is None


async def test_a_dead_holders_levels_are_given_back(backend: Backend, store: AccountStore) -> None:
    other = await _second_store(backend)
    try:
        key_id = await add_key(store)
        levels = [level(1_000)]
        now = time.time()
        await store.renew_lease(now + 5)
        assert await store.reserve_up_to(key_id, "dying", 100, 700, levels) == 700
        assert await other.reclaim_expired(now + 6) == 1
        assert await store.spent(levels) == [Spend(0, 0)]
        assert await other.reserve_up_to(key_id, "survivor", 1, 1_000, levels) == 1_000
        # Only slow: what it spent is charged at the level too, once, beyond the survivor's hold.
        assert await store.settle(key_id, "dying", 300)
        assert not await store.settle(key_id, "dying", 300)
        assert await store.spent(levels) == [Spend(300, 1_000)]
    finally:
        await other.close()


async def test_stale_reservations_give_their_levels_back(store: AccountStore) -> None:
    key_id = await add_key(store)
    levels = [level(1_000), level(None, "global:day:calendar", DAY_1, DAY_1)]
    assert await store.reserve_up_to(key_id, "old", 600, 600, levels) == 600
    cutoff = time.time() + 0.001
    await asyncio.sleep(0.01)
    assert await store.reserve_up_to(key_id, "new", 300, 300, levels) == 300
    assert await store.release_stale(cutoff) == 1
    assert await store.spent(levels) == [Spend(0, 300), Spend(0, 300)]


async def test_levels_survive_reopening(backend: Backend) -> None:
    levels = [level(10_000)]
    first = await backend.open()
    try:
        key_id = await add_key(first)
        assert await first.reserve_up_to(key_id, "open", 4_000, 4_000, levels) == 4_000
        assert await first.reserve_up_to(key_id, "done", 2_000, 2_000, levels) == 2_000
        assert await first.settle(key_id, "done", 1_500)
    finally:
        await first.close()
    second = await backend.open()
    try:
        assert await second.spent(levels) == [Spend(1_500, 4_000)]
        assert await second.reserve_up_to(key_id, "more", 1, 10_000, levels) == 4_500
        assert await second.settle(key_id, "open", 4_000)
        assert await second.spent(levels) == [Spend(5_500, 4_500)]
    finally:
        await second.close()


# teams


async def test_teams_own_keys_and_change_by_field(store: AccountStore) -> None:
    budget = Budget(50_000_000, BudgetPeriod.DAY, BudgetReset.ROLLING)
    team = TeamRecord("team_a", "Research", 100, credit_limit=7_000_000, budget=budget, rpm_limit=60)
    await store.insert_team(team)
    await store.insert_team(TeamRecord("team_b", "Ops", 200))
    assert await store.team_by_id("team_a") == team
    assert await store.team_by_id("team_nope") is None
    assert [found.id for found in await store.list_teams()] == ["team_a", "team_b"]

    changed = await store.update_team(
        "team_a", TeamChanges(frozenset({"name", "budget", "tpm_limit"}), name="R&D", tpm_limit=9_000)
    )
    assert changed is not None and changed == await store.team_by_id("team_a")
    assert (changed.name, changed.budget, changed.tpm_limit) == ("R&D", None, 9_000)
    assert (changed.credit_limit, changed.rpm_limit) == (7_000_000, 60)
    assert await store.update_team("team_nope", TeamChanges(frozenset({"name"}), name="x")) is None

    key_budget = Budget(1_000_000, BudgetPeriod.MONTH, BudgetReset.CALENDAR)
    key_id = await add_key(store, team_id="team_a", budget=key_budget)
    found = await store.key_by_id(key_id)
    assert found is not None and (found.team_id, found.budget) == ("team_a", key_budget)
    assert await store.delete_team("team_a") == "has_keys"
    moved = await store.update_key(key_id, KeyChanges(frozenset({"team_id", "budget"}), team_id="team_b"))
    assert moved is not None and (moved.team_id, moved.budget) == ("team_b", None)
    assert await store.delete_team("team_a") == "deleted"
    assert await store.delete_team("team_a") == "not_found"
    assert await store.delete_team("team_b") == "has_keys"  # a revoked key still belongs to it
    await store.revoke_key(key_id, 1)
    assert await store.delete_team("team_b") == "has_keys"
    assert [found.id for found in await store.list_teams()] == ["team_b"]


@pytest.mark.parametrize("reset", list(BudgetReset))
async def test_a_key_budget_round_trips(store: AccountStore, reset: BudgetReset) -> None:
    budget = Budget(123, BudgetPeriod.WEEK, reset)
    key_id = await add_key(store, budget=budget)
    assert (await store.key_by_id(key_id)).budget == budget  # type: ignore[union-attr]
    assert [key.budget for key in await store.list_keys()] == [budget]
