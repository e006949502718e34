"""The pool every part of PostgresAccountStore shares, and the schema it migrates on opening.

Schema: the named steps of schema.POSTGRES_MIGRATIONS (schema.py declares them for both stores),
recorded in `schema_migrations(name)` and applied under a transaction-scoped advisory lock, so
replicas starting together migrate once. `schema=` puts all tables in one Postgres schema (via
search_path), e.g. one per tenant or per test.
"""

from __future__ import annotations

import re
import time
from typing import Self

import asyncpg

from server.accounts.schema import POSTGRES_MIGRATIONS
from server.observability.ids import new_holder_id

__all__ = ["PostgresConnection"]

_MIGRATION_LOCK = "siraya.accounts.migrations"
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class PostgresConnection:
    """An asyncpg pool over the migrated schema. Open it with `await <store>.open(dsn)`."""

    def __init__(self, pool: asyncpg.Pool, lease_seconds: float = 10.0) -> None:
        self._pool = pool
        # This process's name on its reservations, and how long a renewal vouches for them.
        self.holder_id = new_holder_id()
        self.lease_seconds = lease_seconds
        self._leased = False
        # Reservations this store made with levels: their settle and release take the longer path.
        self._with_levels: set[tuple[str, str]] = set()

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int = 10,
        synchronous_commit: bool = True,
    ) -> Self:
        """Connect and migrate.

        `synchronous_commit=False` stops each credit statement waiting for its WAL flush: about
        twice the throughput on one hot key (measured), but a Postgres crash (not a gateway crash)
        may forget the last few hundred milliseconds of reservations and charges.
        """
        settings: dict[str, str] = {}
        if not synchronous_commit:
            settings["synchronous_commit"] = "off"
        if schema is not None:
            if not _SCHEMA_NAME.fullmatch(schema):
                raise ValueError(f"not a plain schema name: {schema!r}")
            settings["search_path"] = schema
        pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, server_settings=settings)
        try:
            async with pool.acquire() as connection:
                await _migrate(connection, schema)
        except BaseException:
            await pool.close()
            raise
        return cls(pool)

    async def close(self) -> None:
        await self._pool.close()


async def _migrate(connection: asyncpg.Connection, schema: str | None) -> None:
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(hashtext($1))", _MIGRATION_LOCK)
        if schema is not None:
            await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        )
        applied = {row["name"] for row in await connection.fetch("SELECT name FROM schema_migrations")}
        for name, statements in POSTGRES_MIGRATIONS:
            if name not in applied:
                await connection.execute(";\n".join(statements) + ";")
                await connection.execute(
                    "INSERT INTO schema_migrations (name, applied_at) VALUES ($1, $2)", name, time.time()
                )
