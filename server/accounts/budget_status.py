"""What a budget has spent in its window now, and which level refused a request, in words.

The admin views, `/v1/key` and the CLI show a budget with its spend (`BudgetStatus`); a 402 that a
budget or a team caused names that level (`level_refusal`), so a client knows which cap it hit and
when a calendar one resets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from server.accounts.budgets import (
    Budget,
    BudgetReset,
    Spend,
    SpendLevel,
    Window,
    budget_level,
    global_scope,
    key_scope,
    lifetime_level,
    team_budget_scope,
    team_scope,
    window,
)
from server.accounts.keys import KeyRecord
from server.accounts.money import micros_to_usd
from server.accounts.teams import TeamRecord

if TYPE_CHECKING:
    from server.accounts.store import AccountStore

__all__ = ["BudgetStatus", "budget_status", "key_budget_statuses", "level_refusal", "team_spend"]


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """A budget, and its window now: micro-dollars charged and held in it, and what is left
    (negative after an upstream billed beyond its reservation: shown, never hidden)."""

    budget: Budget
    spend: Spend
    window: Window

    @property
    def remaining(self) -> int:
        return self.budget.limit - self.spend.total


def budget_status(budget: Budget, spend: Spend, now: float) -> BudgetStatus:
    return BudgetStatus(budget, spend, window(budget, now))


async def key_budget_statuses(
    accounts: AccountStore, keys: Sequence[KeyRecord], now: float
) -> dict[str, BudgetStatus]:
    """The budget window now of each key that has a budget, by key id (one store call for all)."""
    budgeted = [key for key in keys if key.budget is not None]
    if not budgeted:
        return {}
    levels = [budget_level(key_scope(key.id, key.budget), key.budget, now) for key in budgeted if key.budget]
    spends = await accounts.spent(levels)
    return {
        key.id: budget_status(key.budget, spend, now)
        for key, spend in zip(budgeted, spends, strict=True)
        if key.budget is not None
    }


async def team_spend(
    accounts: AccountStore, team: TeamRecord, now: float
) -> tuple[Spend, BudgetStatus | None]:
    """A team's spend since it was made, and its budget's window now (None without a budget)."""
    levels = [lifetime_level(team_scope(team.id), team.credit_limit)]
    if team.budget is not None:
        levels.append(budget_level(team_budget_scope(team.id, team.budget), team.budget, now))
    spends = await accounts.spent(levels)
    status = None if team.budget is None else budget_status(team.budget, spends[1], now)
    return spends[0], status


def _usd(micros: int) -> str:
    return f"${micros_to_usd(micros):.2f}" if micros % 10_000 == 0 else f"${micros_to_usd(micros):.6f}"


def _budget_words(budget: Budget, now: float) -> str:
    if budget.reset is BudgetReset.ROLLING:
        span = {"day": "24 hours", "week": "7 days", "month": "30 days"}[budget.period.value]
        return f"budget of {_usd(budget.limit)} per {span} (rolling)"
    resets = datetime.fromtimestamp(window(budget, now).resets_at or now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    adjective = {"day": "daily", "week": "weekly", "month": "monthly"}[budget.period.value]
    return f"{adjective} budget of {_usd(budget.limit)} (it resets at {resets})"


def level_refusal(
    levels: tuple[SpendLevel, ...],
    spends: list[Spend],
    least: int,
    key: KeyRecord,
    team: TeamRecord | None,
    global_budget: Budget | None,
    now: float,
    key_room: int | None = None,
) -> str | None:
    """The message of a 402 a level caused: the level with the least room left (read after the
    refusal, so requests in flight may have moved it since); None when the key's own credit
    (`key_room` left, None when unlimited) is tighter still."""
    tightest: tuple[int, SpendLevel] | None = None
    for level, spend in zip(levels, spends, strict=True):
        if level.limit is not None and (tightest is None or level.limit - spend.total < tightest[0]):
            tightest = (level.limit - spend.total, level)
    if tightest is None or (key_room is not None and key_room <= tightest[0]):
        return None
    room, level = tightest
    assert level.limit is not None
    if key.budget is not None and level.scope == key_scope(key.id, key.budget):
        what = f"this key's {_budget_words(key.budget, now)}"
    elif team is not None and level.scope == team_scope(team.id):
        what = f"the credit limit of its team '{team.name}' ({_usd(level.limit)})"
    elif (
        team is not None
        and team.budget is not None
        and level.scope == team_budget_scope(team.id, team.budget)
    ):
        what = f"the {_budget_words(team.budget, now)} of its team '{team.name}'"
    elif global_budget is not None and level.scope == global_scope(global_budget):
        what = f"the gateway's {_budget_words(global_budget, now)}"
    else:
        what = "a budget"
    left = f"{_usd(max(0, room))} is left" if room < least else "requests in flight held what was left"
    return f"This request does not fit {what}: {left}, and it may cost up to {_usd(least)}."
