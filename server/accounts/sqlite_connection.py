"""The connection every part of SqliteAccountStore shares: the file, its thread, its credit lock,
and the schema it migrates on opening.

Schema (schema.py declares the accounts steps for both stores):
  - sqlite_store.MIGRATIONS, numbered by `PRAGMA user_version`, are applied first, exactly as
    SqliteStore applies them; that module owns them.
  - schema.SQLITE_MIGRATIONS are named, and each applied name is a row of `schema_migrations(name)`,
    so they never compete with the numbered list for a version number.
Both lists run inside one BEGIN IMMEDIATE, so processes opening the file together migrate once.

Every read-modify-write runs in BEGIN IMMEDIATE (`_immediate`), and every call on one dedicated
thread (`_run`); sqlite_accounts.py says why.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from server.accounts.schema import SQLITE_MIGRATIONS
from server.accounts.sqlite_binding import register_plain_adapters
from server.accounts.sqlite_store import MIGRATIONS as BASE_MIGRATIONS
from server.observability.ids import new_holder_id

__all__ = ["CreditsOwnedElsewhere", "SqliteConnection", "credit_lock_path"]

T = TypeVar("T")


class CreditsOwnedElsewhere(RuntimeError):
    """Another process keeps this file's balances in memory: moving money here would bypass it."""


def credit_lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".credits-lock")


class SqliteConnection:
    """One SQLite file (WAL), migrated, with the thread its calls run on."""

    def __init__(
        self, path: str | Path, *, busy_timeout_ms: int = 10_000, shared_credit_lock: bool = True
    ) -> None:
        self.path = Path(path)
        # -1: not taken yet; None: not needed (in-memory database, or the owner's inner store).
        self._credit_lock: int | None = -1 if shared_credit_lock and str(path) != ":memory:" else None
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        register_plain_adapters()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-accounts")
        with self._immediate():
            _migrate(self._db)
        # This process's name on its reservations, and how long a renewal vouches for them.
        self.holder_id = new_holder_id()
        self.lease_seconds = 10.0
        self._leased = False

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn` on this store's database thread (for the owned store's batches)."""
        return await self._run(fn, *args)

    def _claim_credits(self) -> None:
        if self._credit_lock is None or self._credit_lock >= 0:
            return
        fd = os.open(credit_lock_path(self.path), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise CreditsOwnedElsewhere(
                f"another gateway process owns the credits of {self.path.name}; stop it or run every"
                " process with --workers"
            ) from None
        self._credit_lock = fd

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    async def close(self) -> None:
        await self._run(self._db.close)
        self._executor.shutdown(wait=True)
        self._release_credit_lock()

    def close_now(self) -> None:
        """Close from synchronous code, when no call is in flight."""
        self._db.close()
        self._executor.shutdown(wait=True)
        self._release_credit_lock()

    def _release_credit_lock(self) -> None:
        if self._credit_lock is not None and self._credit_lock >= 0:
            os.close(self._credit_lock)  # closing the descriptor drops its flock
            self._credit_lock = -1

    def _fetchone(self, sql: str, params: Sequence[Any]) -> Any:
        return self._db.execute(sql, params).fetchone()


def _statements(script: str) -> Iterator[str]:
    """The statements of a migration script, for running one at a time inside our transaction
    (executescript would first COMMIT it)."""
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                yield pending
            pending = ""


def _migrate(db: sqlite3.Connection) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(BASE_MIGRATIONS[version:], start=version + 1):
        for statement in _statements(script):
            db.execute(statement)
        db.execute(f"PRAGMA user_version={number}")
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    applied = {row[0] for row in db.execute("SELECT name FROM schema_migrations")}
    for name, statements in SQLITE_MIGRATIONS:
        if name not in applied:
            for statement in statements:
                db.execute(statement)
            db.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", (name, time.time()))
