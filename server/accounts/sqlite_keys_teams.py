"""Keys and teams in the SQLite file: SqliteAccountStore's records of who may call, and their settings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from server.accounts.keys import KeyChanges, KeyRecord, budget_columns, budget_from_columns
from server.accounts.money import micros_to_usd, usd_to_micros
from server.accounts.sqlite_connection import SqliteConnection
from server.accounts.teams import TEAM_COLUMNS, TeamChanges, TeamDeletion, TeamRecord, team_from_row, team_row

__all__ = ["SqliteKeysAndTeams"]

_KEY_COLUMNS = (
    "id, name, prefix, created_at, expires_at, revoked_at, allowed_models,"
    " credit_limit_micros, credit_used_micros, rpm_limit, tpm_limit, cache_namespace,"
    " team_id, budget_limit_micros, budget_period, budget_reset"
)


class SqliteKeysAndTeams(SqliteConnection):
    # keys

    async def insert_key(self, record: KeyRecord, secret_hash: str) -> None:
        limit = None if record.credit_limit is None else usd_to_micros(record.credit_limit)
        await self._run(
            self._db.execute,
            "INSERT INTO keys (id, name, prefix, secret_hash, created_at, expires_at, allowed_models,"
            " credit_limit, credit_limit_micros, rpm_limit, tpm_limit, cache_namespace, team_id,"
            " budget_limit_micros, budget_period, budget_reset)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.id,
                record.name,
                record.prefix,
                secret_hash,
                record.created_at,
                record.expires_at,
                json.dumps(list(record.allowed_models)),
                None if limit is None else micros_to_usd(limit),
                limit,
                record.rpm_limit,
                record.tpm_limit,
                record.cache_namespace,
                record.team_id,
                *(value for _, value in budget_columns(record.budget)),
            ),
        )

    async def key_by_hash(self, secret_hash: str) -> tuple[KeyRecord, str] | None:
        row = await self._run(
            self._fetchone,
            f"SELECT {_KEY_COLUMNS}, secret_hash FROM keys WHERE secret_hash = ?",
            (secret_hash,),
        )
        return None if row is None else (_key_from_row(row[:-1]), row[-1])

    async def key_by_id(self, key_id: str) -> KeyRecord | None:
        row = await self._run(self._fetchone, f"SELECT {_KEY_COLUMNS} FROM keys WHERE id = ?", (key_id,))
        return None if row is None else _key_from_row(row)

    async def list_keys(self) -> list[KeyRecord]:
        rows = await self._run(
            lambda: self._db.execute(f"SELECT {_KEY_COLUMNS} FROM keys ORDER BY created_at, rowid").fetchall()
        )
        return [_key_from_row(row) for row in rows]

    async def revoke_key(self, key_id: str, at: int) -> KeyRecord | None:
        await self._run(
            self._db.execute,
            "UPDATE keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
            (at, key_id),
        )
        return await self.key_by_id(key_id)

    async def replace_secret(self, key_id: str, prefix: str, secret_hash: str) -> KeyRecord | None:
        cursor = await self._run(
            self._db.execute,
            "UPDATE keys SET prefix = ?, secret_hash = ? WHERE id = ? AND revoked_at IS NULL",
            (prefix, secret_hash, key_id),
        )
        return None if cursor.rowcount == 0 else await self.key_by_id(key_id)

    async def update_key(self, key_id: str, changes: KeyChanges) -> KeyRecord | None:
        assignments = changes.assignments()
        if not assignments:
            return await self.key_by_id(key_id)
        # Column names come from CHANGEABLE_KEY_FIELDS only, never from the caller.
        columns = ", ".join(f"{column} = ?" for column, _ in assignments)
        values = [json.dumps(list(value)) if isinstance(value, tuple) else value for _, value in assignments]
        cursor = await self._run(
            self._db.execute, f"UPDATE keys SET {columns} WHERE id = ?", (*values, key_id)
        )
        return None if cursor.rowcount == 0 else await self.key_by_id(key_id)

    # teams

    async def insert_team(self, record: TeamRecord) -> None:
        await self._run(
            self._db.execute,
            f"INSERT INTO teams ({TEAM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            team_row(record),
        )

    async def team_by_id(self, team_id: str) -> TeamRecord | None:
        row = await self._run(self._fetchone, f"SELECT {TEAM_COLUMNS} FROM teams WHERE id = ?", (team_id,))
        return None if row is None else team_from_row(row)

    async def list_teams(self) -> list[TeamRecord]:
        rows = await self._run(
            lambda: self._db.execute(
                f"SELECT {TEAM_COLUMNS} FROM teams ORDER BY created_at, rowid"
            ).fetchall()
        )
        return [team_from_row(row) for row in rows]

    async def update_team(self, team_id: str, changes: TeamChanges) -> TeamRecord | None:
        assignments = changes.assignments()
        if assignments:
            # Column names come from CHANGEABLE_TEAM_FIELDS only, never from the caller.
            columns = ", ".join(f"{column} = ?" for column, _ in assignments)
            await self._run(
                self._db.execute,
                f"UPDATE teams SET {columns} WHERE id = ?",
                (*(value for _, value in assignments), team_id),
            )
        return await self.team_by_id(team_id)

    async def delete_team(self, team_id: str) -> TeamDeletion:
        return await self._run(self._delete_team, team_id)

    def _delete_team(self, team_id: str) -> TeamDeletion:
        with self._immediate() as db:
            if db.execute("SELECT 1 FROM teams WHERE id = ?", (team_id,)).fetchone() is None:
                return "not_found"
            if db.execute("SELECT 1 FROM keys WHERE team_id = ? LIMIT 1", (team_id,)).fetchone():
                return "has_keys"
            db.execute("DELETE FROM teams WHERE id = ?", (team_id,))
            return "deleted"


def _key_from_row(row: Sequence[Any]) -> KeyRecord:
    return KeyRecord(
        id=row[0],
        name=row[1],
        prefix=row[2],
        created_at=row[3],
        expires_at=row[4],
        revoked_at=row[5],
        allowed_models=tuple(json.loads(row[6])),
        credit_limit=None if row[7] is None else micros_to_usd(row[7]),
        credit_used=micros_to_usd(row[8]),
        rpm_limit=row[9],
        tpm_limit=row[10],
        cache_namespace=row[11],
        team_id=row[12],
        budget=budget_from_columns(row[13], row[14], row[15]),
    )
