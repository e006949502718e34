"""SQLite specifics: the accounts store shares its file and `keys` table with SqliteStore."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from server.accounts.keys import KeyRecord, hash_secret
from server.accounts.sqlite_accounts import ACCOUNT_MIGRATIONS, SqliteAccountStore
from server.accounts.sqlite_store import MIGRATIONS, SqliteStore
from server.accounts.store import Balance


async def test_opens_a_file_made_by_sqlite_store_and_backfills_credits(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    legacy = SqliteStore(path)
    record = KeyRecord(id="key_old", name="old", prefix="sk-sr-old1", created_at=1, credit_limit=2.5)
    legacy.insert_key(record, hash_secret("sk-sr-old-secret"))
    legacy.close()

    store = SqliteAccountStore(path)
    try:
        assert await store.balance(record.id) == Balance(2_500_000, 0, 0)
        assert await store.reserve(record.id, "r1", 1_000_000)
        assert await store.settle(record.id, "r1", 400_000)
    finally:
        await store.close()

    # SqliteStore still opens the file, sees the key, and reads the kept-in-step REAL column;
    # a key it inserts now gets its limit in micros too.
    reopened = SqliteStore(path)
    found = reopened.key_by_hash(hash_secret("sk-sr-old-secret"))
    assert found is not None and found[0].credit_used == 0.4
    later = KeyRecord(id="key_later", name="later", prefix="sk-sr-lat1", created_at=2, credit_limit=0.25)
    reopened.insert_key(later, hash_secret("sk-sr-later-secret"))
    reopened.close()
    store = SqliteAccountStore(path)
    try:
        assert await store.balance(later.id) == Balance(250_000, 0, 0)
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
    assert names == [name for name, _ in ACCOUNT_MIGRATIONS]
