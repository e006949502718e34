"""Budgets with periods, and the windows their spend is counted in.

A budget is `limit` micro-dollars per `period` (day, week or month), reset one of two ways:

    calendar  the period that holds now, at UTC boundaries: the day from midnight, the ISO week from
              Monday midnight, the month from the 1st. The whole period is one bucket, so spend
              starts again from zero at each boundary.
    rolling   the trailing day, 7 days or 30 days. Spend is counted in ROLLING_BUCKETS buckets per
              period, and the window counts the bucket that straddles its start whole: it reaches
              back at most 1/96 of a period further than asked, never less. So a rolling budget is
              never overspent; a charge weighs on it for up to 1/96 of a period longer than exact.

A reservation must fit every level it touches (SpendLevel): the key's period budget, its team's
lifetime credit and period budget, and the gateway's global budget. Each level names a `scope` (whose
spend, and counted how), the `bucket` this request's spend goes into, and the window (`since`: the
oldest bucket counted). A lifetime level is one bucket forever (bucket 0, since 0). The stores keep
one counter of used and reserved micro-dollars per (scope, bucket) and never need to know what a
period is: the windows are computed here, from the caller's clock, so a test can move time.

A reservation's spend stays in the bucket it was reserved in, even when it settles after the
boundary: each period is bounded on its own.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "PERIODS",
    "RESETS",
    "ROLLING_BUCKETS",
    "Budget",
    "Spend",
    "BudgetPeriod",
    "BudgetReset",
    "SpendLevel",
    "Window",
    "budget_level",
    "global_scope",
    "key_scope",
    "lifetime_level",
    "team_budget_scope",
    "team_scope",
    "window",
]


class BudgetPeriod(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class BudgetReset(enum.StrEnum):
    CALENDAR = "calendar"
    ROLLING = "rolling"


PERIODS: tuple[str, ...] = tuple(period.value for period in BudgetPeriod)
RESETS: tuple[str, ...] = tuple(reset.value for reset in BudgetReset)
ROLLING_BUCKETS = 96
_DAY = 86_400
# A rolling month is the trailing 30 days.
_ROLLING_SECONDS = {BudgetPeriod.DAY: _DAY, BudgetPeriod.WEEK: 7 * _DAY, BudgetPeriod.MONTH: 30 * _DAY}


@dataclass(frozen=True, slots=True)
class Budget:
    """At most `limit` micro-dollars per period."""

    limit: int
    period: BudgetPeriod = BudgetPeriod.MONTH
    reset: BudgetReset = BudgetReset.CALENDAR

    def __post_init__(self) -> None:
        if not isinstance(self.limit, int) or isinstance(self.limit, bool) or self.limit < 0:
            raise ValueError("a budget's limit is a non-negative int of micro-dollars")
        object.__setattr__(self, "period", BudgetPeriod(self.period))
        object.__setattr__(self, "reset", BudgetReset(self.reset))

    @property
    def kind(self) -> str:
        return f"{self.period.value}:{self.reset.value}"


@dataclass(frozen=True, slots=True)
class Window:
    """Where a charge made now is counted, and which buckets count against the budget now.

    `start` is when the window begins (for a rolling one, the start of its oldest bucket);
    `resets_at` the next calendar boundary, None for a rolling window (it slides).
    """

    bucket: int
    since: int
    start: int
    resets_at: int | None


@dataclass(frozen=True, slots=True)
class SpendLevel:
    """One level a reservation must fit: `scope`'s spend in the buckets from `since` to `bucket`,
    plus the reservation, at most `limit` (None: counted, never refused)."""

    scope: str
    bucket: int
    since: int
    limit: int | None


@dataclass(frozen=True, slots=True)
class Spend:
    """Micro-dollars charged and held in one level's window."""

    used: int
    reserved: int

    @property
    def total(self) -> int:
        return self.used + self.reserved


def _calendar(period: BudgetPeriod, now: float) -> tuple[int, int]:
    """(start, end) of the UTC calendar period holding `now`, in unix seconds."""
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is BudgetPeriod.DAY:
        start, end = day, day + timedelta(days=1)
    elif period is BudgetPeriod.WEEK:
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    else:
        start = day.replace(day=1)
        if start.month == 12:
            end = start.replace(year=start.year + 1, month=1)
        else:
            end = start.replace(month=start.month + 1)
    return int(start.timestamp()), int(end.timestamp())


def window(budget: Budget, now: float) -> Window:
    """The window of `budget` at `now` (unix seconds)."""
    if budget.reset is BudgetReset.CALENDAR:
        start, end = _calendar(budget.period, now)
        return Window(start, start, start, end)
    size = _ROLLING_SECONDS[budget.period] // ROLLING_BUCKETS
    bucket = int(now // size) * size
    since = bucket - ROLLING_BUCKETS * size
    return Window(bucket, since, since, None)


def key_scope(key_id: str, budget: Budget) -> str:
    return f"key:{key_id}:{budget.kind}"


def team_scope(team_id: str) -> str:
    """The scope of a team's lifetime spend."""
    return f"team:{team_id}"


def team_budget_scope(team_id: str, budget: Budget) -> str:
    return f"team:{team_id}:{budget.kind}"


def global_scope(budget: Budget) -> str:
    return f"global:{budget.kind}"


def budget_level(scope: str, budget: Budget, now: float) -> SpendLevel:
    found = window(budget, now)
    return SpendLevel(scope, found.bucket, found.since, budget.limit)


def lifetime_level(scope: str, limit: int | None) -> SpendLevel:
    return SpendLevel(scope, 0, 0, limit)
