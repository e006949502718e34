"""The schema a fresh accounts database gets, described table by table, so that two versions of the
stores can be compared: test_schema.py holds today's against schema_snapshot.json, which this module
wrote from the stores as they were before schema.py declared the migrations once.

Regenerate the snapshot (only for an intended schema change) with
`python -m tests.unit.server.accounts.schema_description > tests/unit/server/accounts/schema_snapshot.json`.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import asyncpg

from server.accounts.postgres_accounts import PostgresAccountStore
from server.accounts.sqlite_accounts import SqliteAccountStore

Schema = dict[str, Any]


def _sql(text: str | None) -> str | None:
    """SQLite keeps each CREATE as written: compare it without its layout."""
    if text is None:
        return None
    return re.sub(r"\s+", " ", text).replace("( ", "(").replace(" )", ")").strip()


def sqlite_schema(path: Path) -> Schema:
    """Of a fresh SQLite file at `path`: each table's columns, the indexes and triggers, and the
    migrations recorded."""
    SqliteAccountStore(path).close_now()
    with sqlite3.connect(path) as db:
        master = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall()
        tables = {
            name: [list(column) for column in db.execute(f"PRAGMA table_info({name})")]
            for kind, name, _, _ in master
            if kind == "table"
        }
        return {
            "tables": tables,
            "indexes": {name: [table, _sql(sql)] for kind, name, table, sql in master if kind == "index"},
            "triggers": {name: [table, _sql(sql)] for kind, name, table, sql in master if kind == "trigger"},
            "user_version": db.execute("PRAGMA user_version").fetchone()[0],
            "migrations": [row[0] for row in db.execute("SELECT name FROM schema_migrations ORDER BY rowid")],
        }


async def postgres_schema(dsn: str) -> Schema:
    """Of a fresh Postgres schema: each table's columns, the indexes and constraints, and the
    migrations recorded."""
    schema = "schema_" + secrets.token_hex(6)
    await (await PostgresAccountStore.open(dsn, schema=schema, max_size=1)).close()
    connection = await asyncpg.connect(dsn)

    def unqualified(text: str | None) -> str | None:
        return None if text is None else text.replace(f"{schema}.", "")

    try:
        columns = await connection.fetch(
            "SELECT table_name, column_name, data_type, is_nullable, column_default"
            " FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, ordinal_position",
            schema,
        )
        tables: dict[str, list[list[Any]]] = {}
        for table, *column in columns:
            tables.setdefault(table, []).append([*column[:3], unqualified(column[3])])
        indexes = await connection.fetch(
            "SELECT indexname, tablename, indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname",
            schema,
        )
        constraints = await connection.fetch(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE connamespace = $1::regnamespace ORDER BY 1, 2",
            schema,
        )
        migrations = await connection.fetch(f'SELECT name FROM "{schema}".schema_migrations ORDER BY name')
        return {
            "tables": tables,
            "indexes": {name: [table, unqualified(sql)] for name, table, sql in indexes},
            "constraints": {f"{unqualified(table)}.{name}": sql for table, name, sql in constraints},
            "migrations": [row[0] for row in migrations],
        }
    finally:
        await connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await connection.close()


if __name__ == "__main__":
    from tests.unit.server.accounts.accounts_backends import POSTGRES_DSN

    with tempfile.TemporaryDirectory() as folder:
        described = {
            "sqlite": sqlite_schema(Path(folder) / "gateway.db"),
            "postgres": asyncio.run(postgres_schema(POSTGRES_DSN)),
        }
    # One line per column, index or constraint: a change reads as a one-line diff.
    text = json.dumps(described, indent=1)
    flat_list = re.compile(r"\[\s+([^\[\]{}]*?)\s+\]")
    print(flat_list.sub(lambda m: "[" + re.sub(r",\s*\n\s*", ", ", m.group(1)) + "]", text))
