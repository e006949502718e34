"""SQLite specifics: the accounts store shares its file and `keys` table with SqliteStore."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from server.accounts.keys import hash_secret
from server.accounts.schema import SQLITE_MIGRATIONS
from server.accounts.sqlite_accounts import SqliteAccountStore
from server.accounts.sqlite_store import MIGRATIONS, SqliteStore
from server.accounts.store import Balance


def _insert_legacy_key(path: Path, key_id: str, secret_hash: str, credit_limit: float) -> None:
    """A key row as the first release wrote it: only the REAL credit columns."""
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO keys (id, name, prefix, secret_hash, created_at, credit_limit)"
            " VALUES (?, ?, ?, ?, 1, ?)",
            (key_id, key_id, "sk-sr-" + key_id[-4:], secret_hash, credit_limit),
        )


async def test_opens_a_file_made_by_sqlite_store_and_backfills_credits(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    SqliteStore(path).close()
    _insert_legacy_key(path, "key_old", hash_secret("sk-sr-old-secret"), 2.5)

    store = SqliteAccountStore(path)
    try:
        assert await store.balance("key_old") == Balance(2_500_000, 0, 0)
        assert await store.reserve("key_old", "r1", 1_000_000)
        assert await store.settle("key_old", "r1", 400_000)
    finally:
        await store.close()

    # Old readers see the kept-in-step REAL column; a key an old writer inserts now gets its
    # limit in micros too.
    with sqlite3.connect(path) as db:
        used = db.execute("SELECT credit_used FROM keys WHERE id = 'key_old'").fetchone()[0]
    assert used == 0.4
    _insert_legacy_key(path, "key_later", hash_secret("sk-sr-later-secret"), 0.25)
    store = SqliteAccountStore(path)
    try:
        assert await store.balance("key_later") == Balance(250_000, 0, 0)
    finally:
        await store.close()


async def test_migrations_are_recorded_by_name_and_run_once(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    for _ in range(2):
        await SqliteAccountStore(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = [row[0] for row in db.execute("SELECT name FROM schema_migrations")]
    assert names == [name for name, _ in SQLITE_MIGRATIONS]
