"""Budget windows: calendar periods at UTC boundaries, rolling ones that never count less than their
period, and the levels a key's reservation must fit."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from server.accounts.backends import global_budget
from server.accounts.budget_status import level_refusal
from server.accounts.budgets import (
    ROLLING_BUCKETS,
    Budget,
    BudgetPeriod,
    BudgetReset,
    Spend,
    SpendLevel,
    window,
)
from server.accounts.keys import KeyRecord
from server.accounts.teams import TeamRecord, spend_levels
from server.config import ConfigError, load_config


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def calendar(period: str) -> Budget:
    return Budget(1, BudgetPeriod(period), BudgetReset.CALENDAR)


@pytest.mark.parametrize(
    ("period", "now", "start", "end"),
    [
        ("day", "2026-03-15T13:45:10", "2026-03-15T00:00:00", "2026-03-16T00:00:00"),
        ("day", "2026-03-15T00:00:00", "2026-03-15T00:00:00", "2026-03-16T00:00:00"),
        ("day", "2026-03-15T23:59:59.999", "2026-03-15T00:00:00", "2026-03-16T00:00:00"),
        # 2026-03-15 is a Sunday: its ISO week began on Monday the 9th.
        ("week", "2026-03-15T23:00:00", "2026-03-09T00:00:00", "2026-03-16T00:00:00"),
        ("week", "2026-03-16T00:00:00", "2026-03-16T00:00:00", "2026-03-23T00:00:00"),
        ("month", "2026-02-28T12:00:00", "2026-02-01T00:00:00", "2026-03-01T00:00:00"),
        ("month", "2028-02-29T12:00:00", "2028-02-01T00:00:00", "2028-03-01T00:00:00"),
        ("month", "2026-12-31T23:59:59", "2026-12-01T00:00:00", "2027-01-01T00:00:00"),
    ],
)
def test_calendar_periods_start_and_reset_at_utc_boundaries(
    period: str, now: str, start: str, end: str
) -> None:
    found = window(calendar(period), at(now))
    assert found.bucket == found.since == found.start == at(start)
    assert found.resets_at == at(end)


@pytest.mark.parametrize(
    ("period", "seconds"), [("day", 86_400), ("week", 7 * 86_400), ("month", 30 * 86_400)]
)
def test_a_rolling_window_never_counts_less_than_its_period(period: str, seconds: int) -> None:
    budget = Budget(1, BudgetPeriod(period), BudgetReset.ROLLING)
    step = seconds // ROLLING_BUCKETS
    rng = random.Random(7)
    for _ in range(500):
        now = rng.uniform(1.7e9, 1.8e9)
        found = window(budget, now)
        assert found.resets_at is None
        assert found.bucket <= now < found.bucket + step  # a charge now goes into this bucket
        assert found.since % step == 0 and found.bucket % step == 0
        # Everything charged in the trailing period is counted, and at most one bucket more.
        assert now - seconds - step < found.since <= now - seconds
    later = window(budget, at("2026-01-01T00:00:00") + step)
    assert later.since == window(budget, at("2026-01-01T00:00:00")).since + step  # it slides


def test_a_budget_checks_what_it_is_given() -> None:
    with pytest.raises(ValueError):
        Budget(-1)
    with pytest.raises(ValueError):
        Budget(1, "fortnight")  # type: ignore[arg-type]
    assert Budget(5, "week", "rolling") == Budget(5, BudgetPeriod.WEEK, BudgetReset.ROLLING)  # type: ignore[arg-type]


def test_the_levels_of_a_key_sorted_by_scope() -> None:
    now = at("2026-03-15T13:00:00")
    day = Budget(10, BudgetPeriod.DAY, BudgetReset.CALENDAR)
    month = Budget(300, BudgetPeriod.MONTH, BudgetReset.CALENDAR)
    key = KeyRecord("key_1", "k", "sk-sr-x", 0, team_id="team_1", budget=day)
    team = TeamRecord("team_1", "Research", 0, credit_limit=None, budget=month)
    levels = spend_levels(key, team, Budget(1000, BudgetPeriod.WEEK), now)
    assert levels == (
        SpendLevel(
            "global:week:calendar", int(at("2026-03-09T00:00:00")), int(at("2026-03-09T00:00:00")), 1000
        ),
        SpendLevel(
            "key:key_1:day:calendar", int(at("2026-03-15T00:00:00")), int(at("2026-03-15T00:00:00")), 10
        ),
        SpendLevel("team:team_1", 0, 0, None),  # counted even without a cap
        SpendLevel(
            "team:team_1:month:calendar", int(at("2026-03-01T00:00:00")), int(at("2026-03-01T00:00:00")), 300
        ),
    )
    assert spend_levels(KeyRecord("key_2", "k", "sk-sr-y", 0), None, None, now) == ()


def test_a_refusal_names_the_tightest_level_unless_the_keys_own_credit_is_tighter() -> None:
    now = at("2026-03-15T13:00:00")
    team = TeamRecord("team_1", "Research", 0, credit_limit=5_000, budget=Budget(9_000, BudgetPeriod.DAY))
    key = KeyRecord("key_1", "k", "sk-sr-x", 0, team_id="team_1", credit_limit=1.0)
    levels = spend_levels(key, team, None, now)  # the team's lifetime, then its day
    spends = [Spend(4_500, 0), Spend(4_500, 0)]
    said = level_refusal(levels, spends, 600, key, team, None, now, key_room=900_000)
    assert said == (
        "This request does not fit the credit limit of its team 'Research' ($0.005000): $0.000500 is left,"
        " and it may cost up to $0.000600."
    )
    # The key's own credit is tighter: the key's own refusal says so, not this.
    assert level_refusal(levels, spends, 600, key, team, None, now, key_room=100) is None
    # Read after requests in flight settled: the level has room again, and is still the one named.
    later = level_refusal(levels, [Spend(1_000, 0), Spend(1_000, 0)], 600, key, team, None, now)
    assert later is not None and "requests in flight held what was left" in later
    daily = level_refusal(levels, [Spend(0, 0), Spend(8_800, 0)], 600, key, team, None, now)
    assert daily is not None and "daily budget of $0.009000 (it resets at 2026-03-16T00:00:00Z)" in daily


def test_the_global_budget_comes_from_the_accounts_section(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("accounts:\n  global_budget: {limit: 12.5, period: week, reset: rolling}\n")
    assert global_budget(load_config(path, {})) == Budget(12_500_000, BudgetPeriod.WEEK, BudgetReset.ROLLING)
    path.write_text("accounts:\n  global_budget: {limit: 3, period: month}\n")
    assert global_budget(load_config(path, {})) == Budget(3_000_000, BudgetPeriod.MONTH, BudgetReset.CALENDAR)
    assert global_budget(load_config(None, {})) is None
    path.write_text("accounts:\n  global_budget: {limit: 3, period: fortnight, resets: calendar}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert "accounts.global_budget.period" in str(caught.value)
    assert "accounts.global_budget.resets" in str(caught.value)
