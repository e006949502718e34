"""Teams: a team owns keys, and caps what they spend and how fast, together.

A team has an optional lifetime credit limit, an optional period budget (budgets.py) and optional
rpm/tpm limits. Each caps the sum over its keys: a request of a team's key must fit the key's own
limits and the team's. Storage is the AccountStore (store.py), beside the keys.

`spend_levels` lists the levels a request's reservation must fit besides the key's lifetime credit,
in the order every store takes their locks (sorted by scope). `TeamManager.cached` is the hot
path's view of a team: like a key, a team changed on another replica applies here within
`cache_ttl` seconds (on this replica, at once).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from server.accounts.budgets import (
    Budget,
    SpendLevel,
    budget_level,
    global_scope,
    key_scope,
    lifetime_level,
    team_budget_scope,
    team_scope,
)
from server.accounts.keys import KeyRecord, budget_columns, budget_from_columns

__all__ = [
    "CHANGEABLE_TEAM_FIELDS",
    "TEAM_COLUMNS",
    "NewTeam",
    "TeamChanges",
    "TeamDeletion",
    "TeamManager",
    "TeamRecord",
    "TeamStore",
    "spend_levels",
    "team_from_row",
    "team_row",
]


@dataclass(frozen=True, slots=True)
class TeamRecord:
    id: str
    name: str
    created_at: int
    # Micro-dollars the team's keys may spend in all, together; None: no lifetime cap.
    credit_limit: int | None = None
    budget: Budget | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None


@dataclass(frozen=True, slots=True)
class NewTeam:
    name: str
    credit_limit: int | None = None
    budget: Budget | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None


# A team's row, in every store.
TEAM_COLUMNS = (
    "id, name, created_at, credit_limit_micros, budget_limit_micros, budget_period, budget_reset,"
    " rpm_limit, tpm_limit"
)
CHANGEABLE_TEAM_FIELDS: tuple[str, ...] = ("name", "credit_limit", "budget", "rpm_limit", "tpm_limit")


@dataclass(frozen=True, slots=True)
class TeamChanges:
    """New settings for a team: each field named in `fields` takes its value here (None clears it)."""

    fields: frozenset[str]
    name: str = ""
    credit_limit: int | None = None
    budget: Budget | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None

    def __post_init__(self) -> None:
        unknown = self.fields - set(CHANGEABLE_TEAM_FIELDS)
        if unknown:
            raise ValueError(f"not changeable through TeamChanges: {', '.join(sorted(unknown))}")

    def assignments(self) -> list[tuple[str, str | int | None]]:
        """(column, value) of each changed field, in CHANGEABLE_TEAM_FIELDS order."""
        found: list[tuple[str, str | int | None]] = []
        for name in CHANGEABLE_TEAM_FIELDS:
            if name not in self.fields:
                continue
            if name == "budget":
                found.extend(budget_columns(self.budget))
            elif name == "credit_limit":
                found.append(("credit_limit_micros", self.credit_limit))
            else:
                found.append((name, getattr(self, name)))
        return found


TeamDeletion = Literal["deleted", "not_found", "has_keys"]


class TeamStore(Protocol):
    """The team methods of an account store (store.AccountStore extends it)."""

    async def insert_team(self, record: TeamRecord) -> None: ...
    async def team_by_id(self, team_id: str) -> TeamRecord | None: ...
    async def list_teams(self) -> list[TeamRecord]: ...
    async def update_team(self, team_id: str, changes: TeamChanges) -> TeamRecord | None:
        """Change the settings `changes.fields` names; the new record, or None for an unknown team."""
        ...

    async def delete_team(self, team_id: str) -> TeamDeletion:
        """Delete a team that owns no key (revoked ones included): a team's budget cannot be escaped
        by deleting it under its keys."""
        ...


def spend_levels(
    key: KeyRecord, team: TeamRecord | None, global_budget: Budget | None, now: float
) -> tuple[SpendLevel, ...]:
    """Every level a reservation of `key`'s must fit besides its lifetime credit, sorted by scope.

    A team's lifetime level is there even without a limit, so that its spend is always counted.
    """
    levels: list[SpendLevel] = []
    if key.budget is not None:
        levels.append(budget_level(key_scope(key.id, key.budget), key.budget, now))
    if team is not None:
        levels.append(lifetime_level(team_scope(team.id), team.credit_limit))
        if team.budget is not None:
            levels.append(budget_level(team_budget_scope(team.id, team.budget), team.budget, now))
    if global_budget is not None:
        levels.append(budget_level(global_scope(global_budget), global_budget, now))
    levels.sort(key=lambda level: level.scope)
    return tuple(levels)


@dataclass(slots=True)
class _CachedTeam:
    record: TeamRecord | None
    fetched_at: float


@dataclass
class TeamManager:
    """Creates, reads and changes teams, with a short cache for the request path."""

    store: TeamStore
    cache_ttl: float = 5.0
    _cache: dict[str, _CachedTeam] = field(default_factory=dict)

    async def create(self, spec: NewTeam) -> TeamRecord:
        record = TeamRecord(
            id="team_" + secrets.token_hex(8),
            name=spec.name,
            created_at=int(time.time()),
            credit_limit=spec.credit_limit,
            budget=spec.budget,
            rpm_limit=spec.rpm_limit,
            tpm_limit=spec.tpm_limit,
        )
        await self.store.insert_team(record)
        return record

    async def get(self, team_id: str) -> TeamRecord | None:
        return await self.store.team_by_id(team_id)

    async def list(self) -> list[TeamRecord]:
        return await self.store.list_teams()

    async def update(self, team_id: str, changes: TeamChanges) -> TeamRecord | None:
        record = await self.store.update_team(team_id, changes) if changes.fields else await self.get(team_id)
        self._cache.clear()
        return record

    async def delete(self, team_id: str) -> TeamDeletion:
        outcome = await self.store.delete_team(team_id)
        self._cache.clear()
        return outcome

    def forget(self) -> None:
        self._cache.clear()

    async def cached(self, team_id: str) -> TeamRecord | None:
        """The team as the request path sees it: from the store at most every `cache_ttl` seconds."""
        now = time.monotonic()
        found = self._cache.get(team_id)
        if found is None or now - found.fetched_at > self.cache_ttl:
            found = _CachedTeam(await self.store.team_by_id(team_id), now)
            self._cache[team_id] = found
        return found.record


def team_row(record: TeamRecord) -> tuple[Any, ...]:
    """The values of a team's row, in the order of its columns (TEAM_COLUMNS)."""
    return (
        record.id,
        record.name,
        record.created_at,
        record.credit_limit,
        *(value for _, value in budget_columns(record.budget)),
        record.rpm_limit,
        record.tpm_limit,
    )


def team_from_row(row: Sequence[Any]) -> TeamRecord:
    return TeamRecord(
        id=row[0],
        name=row[1],
        created_at=row[2],
        credit_limit=row[3],
        budget=budget_from_columns(row[4], row[5], row[6]),
        rpm_limit=row[7],
        tpm_limit=row[8],
    )
