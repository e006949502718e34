"""Keys and teams in Postgres: PostgresAccountStore's records of who may call, and their settings."""

from __future__ import annotations

from typing import Any

from server.accounts.keys import KeyChanges, KeyRecord, budget_columns, budget_from_columns
from server.accounts.money import micros_to_usd, usd_to_micros
from server.accounts.postgres_connection import PostgresConnection
from server.accounts.teams import TEAM_COLUMNS, TeamChanges, TeamDeletion, TeamRecord, team_from_row, team_row

__all__ = ["PostgresKeysAndTeams"]

_KEY_COLUMNS = (
    "id, name, prefix, created_at, expires_at, revoked_at, allowed_models,"
    " credit_limit_micros, credit_used_micros, rpm_limit, tpm_limit, cache_namespace,"
    " team_id, budget_limit_micros, budget_period, budget_reset"
)


class PostgresKeysAndTeams(PostgresConnection):
    # keys

    async def insert_key(self, record: KeyRecord, secret_hash: str) -> None:
        await self._pool.execute(
            "INSERT INTO keys (id, name, prefix, secret_hash, created_at, expires_at, allowed_models,"
            " credit_limit_micros, rpm_limit, tpm_limit, cache_namespace, team_id, budget_limit_micros,"
            " budget_period, budget_reset)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            record.id,
            record.name,
            record.prefix,
            secret_hash,
            record.created_at,
            record.expires_at,
            list(record.allowed_models),
            None if record.credit_limit is None else usd_to_micros(record.credit_limit),
            record.rpm_limit,
            record.tpm_limit,
            record.cache_namespace,
            record.team_id,
            *(value for _, value in budget_columns(record.budget)),
        )

    async def key_by_hash(self, secret_hash: str) -> tuple[KeyRecord, str] | None:
        row = await self._pool.fetchrow(
            f"SELECT {_KEY_COLUMNS}, secret_hash FROM keys WHERE secret_hash = $1", secret_hash
        )
        return None if row is None else (_key_from_row(row), row["secret_hash"])

    async def key_by_id(self, key_id: str) -> KeyRecord | None:
        row = await self._pool.fetchrow(f"SELECT {_KEY_COLUMNS} FROM keys WHERE id = $1", key_id)
        return None if row is None else _key_from_row(row)

    async def list_keys(self) -> list[KeyRecord]:
        rows = await self._pool.fetch(f"SELECT {_KEY_COLUMNS} FROM keys ORDER BY created_at, created_seq")
        return [_key_from_row(row) for row in rows]

    async def revoke_key(self, key_id: str, at: int) -> KeyRecord | None:
        row = await self._pool.fetchrow(
            f"UPDATE keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING {_KEY_COLUMNS}",
            key_id,
            at,
        )
        return None if row is None else _key_from_row(row)

    async def replace_secret(self, key_id: str, prefix: str, secret_hash: str) -> KeyRecord | None:
        row = await self._pool.fetchrow(
            "UPDATE keys SET prefix = $2, secret_hash = $3 WHERE id = $1 AND revoked_at IS NULL"
            f" RETURNING {_KEY_COLUMNS}",
            key_id,
            prefix,
            secret_hash,
        )
        return None if row is None else _key_from_row(row)

    async def update_key(self, key_id: str, changes: KeyChanges) -> KeyRecord | None:
        assignments = changes.assignments()
        if not assignments:
            return await self.key_by_id(key_id)
        # Column names come from CHANGEABLE_KEY_FIELDS only, never from the caller.
        columns = ", ".join(f"{column} = ${i}" for i, (column, _) in enumerate(assignments, start=2))
        values = [list(value) if isinstance(value, tuple) else value for _, value in assignments]
        row = await self._pool.fetchrow(
            f"UPDATE keys SET {columns} WHERE id = $1 RETURNING {_KEY_COLUMNS}", key_id, *values
        )
        return None if row is None else _key_from_row(row)

    # teams

    async def insert_team(self, record: TeamRecord) -> None:
        await self._pool.execute(
            f"INSERT INTO teams ({TEAM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            *team_row(record),
        )

    async def team_by_id(self, team_id: str) -> TeamRecord | None:
        row = await self._pool.fetchrow(f"SELECT {TEAM_COLUMNS} FROM teams WHERE id = $1", team_id)
        return None if row is None else team_from_row(tuple(row))

    async def list_teams(self) -> list[TeamRecord]:
        rows = await self._pool.fetch(f"SELECT {TEAM_COLUMNS} FROM teams ORDER BY created_at, created_seq")
        return [team_from_row(tuple(row)) for row in rows]

    async def update_team(self, team_id: str, changes: TeamChanges) -> TeamRecord | None:
        assignments = changes.assignments()
        if not assignments:
            return await self.team_by_id(team_id)
        # Column names come from CHANGEABLE_TEAM_FIELDS only, never from the caller.
        columns = ", ".join(f"{column} = ${i}" for i, (column, _) in enumerate(assignments, start=2))
        row = await self._pool.fetchrow(
            f"UPDATE teams SET {columns} WHERE id = $1 RETURNING {TEAM_COLUMNS}",
            team_id,
            *(value for _, value in assignments),
        )
        return None if row is None else team_from_row(tuple(row))

    async def delete_team(self, team_id: str) -> TeamDeletion:
        outcome = await self._pool.fetchval(
            "WITH t AS (SELECT id FROM teams WHERE id = $1 FOR UPDATE),"
            " d AS (DELETE FROM teams WHERE id IN (SELECT id FROM t)"
            " AND NOT EXISTS (SELECT 1 FROM keys WHERE team_id = $1) RETURNING 1)"
            " SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM t) THEN 'not_found'"
            " WHEN EXISTS (SELECT 1 FROM d) THEN 'deleted' ELSE 'has_keys' END",
            team_id,
        )
        return outcome  # type: ignore[no-any-return]


def _key_from_row(row: Any) -> KeyRecord:
    limit = row["credit_limit_micros"]
    return KeyRecord(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        allowed_models=tuple(row["allowed_models"]),
        credit_limit=None if limit is None else micros_to_usd(limit),
        credit_used=micros_to_usd(row["credit_used_micros"]),
        rpm_limit=row["rpm_limit"],
        tpm_limit=row["tpm_limit"],
        cache_namespace=row["cache_namespace"],
        team_id=row["team_id"],
        budget=budget_from_columns(row["budget_limit_micros"], row["budget_period"], row["budget_reset"]),
    )
