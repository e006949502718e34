"""The embedded AccountStore: keys, credits and the usage ledger in the gateway's SQLite file.

It shares the file (and the `keys` table) with sqlite_store.SqliteStore. Schema:
  - sqlite_store.MIGRATIONS, numbered by `PRAGMA user_version`, are applied first, exactly as
    SqliteStore applies them; that module owns them.
  - This module's ACCOUNT_MIGRATIONS are named, and each applied name is a row of
    `schema_migrations(name)`, so they never compete with the numbered list for a version number.
    They add integer micro-dollar columns to `keys` (the legacy REAL credit columns are kept in
    step for old readers, and a trigger fills the micros limit of keys they insert),
    `credit_reservations` and `usage_ledger`.
Both lists run inside one BEGIN IMMEDIATE, so processes opening the file together migrate once.

Several processes may share the file: every read-modify-write (reserve, settle, release) runs in
BEGIN IMMEDIATE, which takes SQLite's single write lock before reading, so the limit check and the
update are one atomic step across processes (others wait up to busy_timeout).

A single-worker gateway owns the file's balances instead (owned_sqlite_accounts.py): it holds an
exclusive flock on `<db>.credits-lock` and keeps credits in memory. This store takes that lock
shared before its first credit write, so it never moves money behind an owner's back (it raises
CreditsOwnedElsewhere), and an owner never starts while it runs.

All calls run on one dedicated thread: a wait for another process's write lock must never stall
the event loop, and one thread serialises this process's use of the connection. Measured on the
2-core dev machine: the hop costs ~0.12 ms, a reserve+settle pair ~0.5 ms end to end, and one hot
key sustains ~1,850 pairs/s.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from server.accounts.budgets import Spend, SpendLevel
from server.accounts.keys import KeyChanges, KeyRecord, budget_columns, budget_from_columns
from server.accounts.ledger_queries import (
    LEDGER_INDEXES,
    Cursor,
    GenerationFilter,
    GenerationPage,
    UsageQuery,
    UsageRow,
    attempts_from_json,
    attempts_json,
    generations_sql,
    latencies_sql,
    page_of,
    percentile,
    qmark,
    usage_row,
    usage_sql,
)
from server.accounts.money import micros_to_usd, usd_to_micros
from server.accounts.sqlite_store import MIGRATIONS as BASE_MIGRATIONS
from server.accounts.store import (
    LEDGER_COLUMNS,
    STORED_RESPONSE_COLUMNS,
    AuditEvent,
    Balance,
    LedgerRecord,
    StoredResponse,
    check_reserve_bounds,
)
from server.accounts.teams import TEAM_COLUMNS, TeamChanges, TeamDeletion, TeamRecord, team_from_row, team_row
from server.observability.ids import new_holder_id

__all__ = ["ACCOUNT_MIGRATIONS", "CreditsOwnedElsewhere", "SqliteAccountStore", "credit_lock_path"]

T = TypeVar("T")

ACCOUNT_MIGRATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "accounts/0001_credits_reservations_ledger",
        (
            "ALTER TABLE keys ADD COLUMN credit_limit_micros INTEGER",
            "ALTER TABLE keys ADD COLUMN credit_used_micros INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE keys ADD COLUMN credit_reserved_micros INTEGER NOT NULL DEFAULT 0",
            "UPDATE keys SET credit_limit_micros = CAST(ROUND(credit_limit * 1000000) AS INTEGER),"
            " credit_used_micros = CAST(ROUND(credit_used * 1000000) AS INTEGER)",
            # Rows written by older readers carry only the REAL limit.
            """CREATE TRIGGER keys_credit_limit_micros AFTER INSERT ON keys
               WHEN NEW.credit_limit IS NOT NULL AND NEW.credit_limit_micros IS NULL
               BEGIN
                   UPDATE keys SET credit_limit_micros = CAST(ROUND(NEW.credit_limit * 1000000) AS INTEGER)
                   WHERE id = NEW.id;
               END""",
            """CREATE TABLE credit_reservations (
                key_id TEXT NOT NULL,
                request_id TEXT NOT NULL,
                amount_micros INTEGER NOT NULL,
                settled_micros INTEGER,
                state TEXT NOT NULL,
                created_at REAL NOT NULL,
                PRIMARY KEY (key_id, request_id)
            )""",
            "CREATE INDEX credit_reservations_open ON credit_reservations (created_at) WHERE state = 'open'",
            """CREATE TABLE usage_ledger (
                request_id TEXT NOT NULL,
                key_id TEXT NOT NULL,
                created_at REAL NOT NULL,
                model_requested TEXT NOT NULL,
                status TEXT NOT NULL,
                http_status INTEGER NOT NULL,
                model_served TEXT,
                provider TEXT,
                error_code TEXT,
                prompt_tokens INTEGER NOT NULL,
                completion_tokens INTEGER NOT NULL,
                cached_tokens INTEGER NOT NULL,
                reasoning_tokens INTEGER NOT NULL,
                cost_micros INTEGER NOT NULL,
                latency_ms REAL NOT NULL,
                ttft_ms REAL,
                streamed INTEGER NOT NULL,
                PRIMARY KEY (key_id, request_id)
            )""",
        ),
    ),
    (
        "accounts/0002_ledger_cache_write_tokens",
        ("ALTER TABLE usage_ledger ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0",),
    ),
    (
        "accounts/0003_stored_responses",
        (
            """CREATE TABLE stored_responses (
                id TEXT PRIMARY KEY,
                key_id TEXT NOT NULL,
                created_at REAL NOT NULL,
                status TEXT NOT NULL,
                model TEXT NOT NULL,
                provider TEXT,
                previous_response_id TEXT,
                background INTEGER NOT NULL,
                response BLOB NOT NULL,
                input_items BLOB NOT NULL,
                upstream_id TEXT,
                reservation_id TEXT,
                lease_until REAL
            )""",
            "CREATE INDEX stored_responses_created ON stored_responses (created_at)",
            "CREATE INDEX stored_responses_active ON stored_responses (lease_until)"
            " WHERE status IN ('queued', 'in_progress')",
        ),
    ),
    (
        "accounts/0004_ledger_cache_saved",
        ("ALTER TABLE usage_ledger ADD COLUMN cache_saved_micros INTEGER NOT NULL DEFAULT 0",),
    ),
    (
        "accounts/0005_ledger_attempts_indexes_audit",
        (
            "ALTER TABLE usage_ledger ADD COLUMN attempts TEXT NOT NULL DEFAULT '[]'",
            *LEDGER_INDEXES,
            """CREATE TABLE audit_log (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                at REAL NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                target TEXT,
                source TEXT,
                via TEXT,
                detail TEXT NOT NULL
            )""",
        ),
    ),
    (
        "accounts/0006_key_cache_namespace",
        # NULL: the key's own id (keys.cache_namespace_of).
        ("ALTER TABLE keys ADD COLUMN cache_namespace TEXT",),
    ),
    (
        "accounts/0007_ledger_store_bodies",
        (
            "ALTER TABLE usage_ledger ADD COLUMN prompt_text TEXT",
            "ALTER TABLE usage_ledger ADD COLUMN answer_text TEXT",
        ),
    ),
    (
        "accounts/0008_reservation_leases",
        (
            "ALTER TABLE credit_reservations ADD COLUMN holder_id TEXT",
            "CREATE INDEX credit_reservations_held ON credit_reservations (holder_id) WHERE state = 'open'",
            """CREATE TABLE reservation_holders (
                holder_id TEXT PRIMARY KEY,
                lease_until REAL NOT NULL
            )""",
        ),
    ),
    (
        "accounts/0009_ledger_token_source",
        ("ALTER TABLE usage_ledger ADD COLUMN token_source TEXT NOT NULL DEFAULT 'reported'",),
    ),
    (
        "accounts/0010_teams_and_budgets",
        (
            "ALTER TABLE keys ADD COLUMN team_id TEXT",
            "ALTER TABLE keys ADD COLUMN budget_limit_micros INTEGER",
            "ALTER TABLE keys ADD COLUMN budget_period TEXT",
            "ALTER TABLE keys ADD COLUMN budget_reset TEXT",
            "CREATE INDEX keys_team ON keys (team_id) WHERE team_id IS NOT NULL",
            """CREATE TABLE teams (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                credit_limit_micros INTEGER,
                budget_limit_micros INTEGER,
                budget_period TEXT,
                budget_reset TEXT,
                rpm_limit INTEGER,
                tpm_limit INTEGER
            )""",
            # Spend per level (budgets.SpendLevel.scope) and bucket: charged, and held in flight.
            """CREATE TABLE budget_spend (
                scope TEXT NOT NULL,
                bucket INTEGER NOT NULL,
                used_micros INTEGER NOT NULL DEFAULT 0,
                reserved_micros INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (scope, bucket)
            )""",
            # The levels a reservation holds its amount in; `holds` counts them.
            """CREATE TABLE credit_holds (
                key_id TEXT NOT NULL,
                request_id TEXT NOT NULL,
                scope TEXT NOT NULL,
                bucket INTEGER NOT NULL,
                PRIMARY KEY (key_id, request_id, scope)
            )""",
            "ALTER TABLE credit_reservations ADD COLUMN holds INTEGER NOT NULL DEFAULT 0",
        ),
    ),
    (
        "accounts/0011_ledger_upstream_cost",
        (
            "ALTER TABLE usage_ledger ADD COLUMN upstream_cost_micros INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE usage_ledger ADD COLUMN upstream_reported_cost_micros INTEGER",
        ),
    ),
)

_RESPONSE_SELECT = f"SELECT {', '.join(STORED_RESPONSE_COLUMNS)} FROM stored_responses"
_RESPONSE_INSERT = (
    f"INSERT INTO stored_responses ({', '.join(STORED_RESPONSE_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in STORED_RESPONSE_COLUMNS)})"
)
_RESPONSE_UPDATE = (
    "UPDATE stored_responses SET status = ?, model = ?, provider = ?, response = ?, upstream_id = ?,"
    " reservation_id = ?, lease_until = ? WHERE id = ? AND key_id = ? AND status IN ({})"
)

_KEY_COLUMNS = (
    "id, name, prefix, created_at, expires_at, revoked_at, allowed_models,"
    " credit_limit_micros, credit_used_micros, rpm_limit, tpm_limit, cache_namespace,"
    " team_id, budget_limit_micros, budget_period, budget_reset"
)
_LEDGER_SELECT = f"SELECT {', '.join(LEDGER_COLUMNS)} FROM usage_ledger"
_LEDGER_INSERT = (
    f"INSERT OR IGNORE INTO usage_ledger ({', '.join(LEDGER_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in LEDGER_COLUMNS)})"
)
_RENEW = (
    "INSERT INTO reservation_holders (holder_id, lease_until) VALUES (?, ?)"
    " ON CONFLICT (holder_id) DO UPDATE SET lease_until = excluded.lease_until"
)
# Open reservations of other holders whose lease ended, or that ended it (a graceful stop).
_EXPIRED_WHERE = (
    "state = 'open' AND holder_id IS NOT NULL AND holder_id != ? AND NOT EXISTS (SELECT 1 FROM"
    " reservation_holders h WHERE h.holder_id = credit_reservations.holder_id AND h.lease_until >= ?)"
)
# Holders gone this long have had their reservations reclaimed: their rows are just clutter.
HOLDER_RETENTION_SECONDS = 3600.0
_CHARGE = (
    "UPDATE keys SET credit_reserved_micros = credit_reserved_micros - ?,"
    " credit_used_micros = credit_used_micros + ?, credit_used = (credit_used_micros + ?) / 1000000.0"
    " WHERE id = ?"
)
SPENT = (
    "SELECT COALESCE(SUM(used_micros), 0), COALESCE(SUM(reserved_micros), 0) FROM budget_spend"
    " WHERE scope = ? AND bucket >= ? AND bucket <= ?"
)
HOLD_LEVEL = (
    "INSERT INTO budget_spend (scope, bucket, used_micros, reserved_micros) VALUES (?, ?, 0, ?)"
    " ON CONFLICT (scope, bucket) DO UPDATE SET reserved_micros = reserved_micros + excluded.reserved_micros"
)
# (scope, bucket, charge, change of the held amount): a settle or a release of a level's hold.
MOVE_LEVEL = (
    "INSERT INTO budget_spend (scope, bucket, used_micros, reserved_micros) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (scope, bucket) DO UPDATE SET used_micros = used_micros + excluded.used_micros,"
    " reserved_micros = reserved_micros + excluded.reserved_micros"
)
_HOLDS_OF = "SELECT scope, bucket FROM credit_holds WHERE key_id = ? AND request_id = ? ORDER BY scope"
# The held amount per level of the open reservations a WHERE clause picks (aliased `credit_reservations`).
_HELD_BY_LEVEL = (
    "SELECT held.scope, held.bucket, SUM(credit_reservations.amount_micros) FROM credit_reservations"
    " JOIN credit_holds held ON held.key_id = credit_reservations.key_id"
    " AND held.request_id = credit_reservations.request_id WHERE {} GROUP BY held.scope, held.bucket"
    " ORDER BY held.scope, held.bucket"
)


class CreditsOwnedElsewhere(RuntimeError):
    """Another process keeps this file's balances in memory: moving money here would bypass it."""


def credit_lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".credits-lock")


class SqliteAccountStore:
    """AccountStore over one SQLite file (WAL), safe to share between processes."""

    def __init__(
        self, path: str | Path, *, busy_timeout_ms: int = 10_000, shared_credit_lock: bool = True
    ) -> None:
        self.path = Path(path)
        # -1: not taken yet; None: not needed (in-memory database, or the owner's inner store).
        self._credit_lock: int | None = -1 if shared_credit_lock and str(path) != ":memory:" else None
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
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

    def _fetchone(self, sql: str, params: Sequence[Any]) -> Any:
        return self._db.execute(sql, params).fetchone()

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

    async def set_credit_limit(self, key_id: str, limit_micros: int | None) -> Balance | None:
        self._claim_credits()
        usd = None if limit_micros is None else micros_to_usd(limit_micros)
        await self._run(
            self._db.execute,
            "UPDATE keys SET credit_limit_micros = ?, credit_limit = ? WHERE id = ?",
            (limit_micros, usd, key_id),
        )
        return await self.balance(key_id)

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

    # credits

    async def reserve(self, key_id: str, request_id: str, amount_micros: int) -> bool:
        if amount_micros < 0:
            raise ValueError("a reservation cannot be negative")
        self._claim_credits()
        return await self._run(self._reserve, key_id, request_id, amount_micros, time.time())

    def _reserve(self, key_id: str, request_id: str, amount: int, now: float) -> bool:
        with self._immediate() as db:
            row = db.execute(
                "SELECT state FROM credit_reservations WHERE key_id = ? AND request_id = ?",
                (key_id, request_id),
            ).fetchone()
            if row is not None:
                return bool(row[0] == "open")
            cursor = db.execute(
                "UPDATE keys SET credit_reserved_micros = credit_reserved_micros + ? WHERE id = ? AND"
                " (credit_limit_micros IS NULL"
                " OR credit_used_micros + credit_reserved_micros + ? <= credit_limit_micros)",
                (amount, key_id, amount),
            )
            if cursor.rowcount == 0:
                return False
            self._hold(db, key_id, request_id, amount, now)
            return True

    def _hold(
        self,
        db: sqlite3.Connection,
        key_id: str,
        request_id: str,
        amount: int,
        now: float,
        levels: Sequence[SpendLevel] = (),
    ) -> None:
        """Write an open reservation under this store's lease (taken first, in the same transaction),
        and hold its amount in each level's bucket."""
        if not self._leased:
            db.execute(_RENEW, (self.holder_id, now + self.lease_seconds))
            self._leased = True
        db.execute(
            "INSERT INTO credit_reservations (key_id, request_id, amount_micros, state, created_at,"
            " holder_id, holds) VALUES (?, ?, ?, 'open', ?, ?, ?)",
            (key_id, request_id, amount, now, self.holder_id, len(levels)),
        )
        for level in levels:
            db.execute(HOLD_LEVEL, (level.scope, level.bucket, amount))
            db.execute(
                "INSERT INTO credit_holds (key_id, request_id, scope, bucket) VALUES (?, ?, ?, ?)",
                (key_id, request_id, level.scope, level.bucket),
            )

    async def reserve_up_to(
        self,
        key_id: str,
        request_id: str,
        minimum_micros: int,
        maximum_micros: int,
        levels: Sequence[SpendLevel] = (),
    ) -> int | None:
        check_reserve_bounds(minimum_micros, maximum_micros)
        self._claim_credits()
        return await self._run(
            self._reserve_up_to, key_id, request_id, minimum_micros, maximum_micros, time.time(), levels
        )

    def _reserve_up_to(
        self, key_id: str, request_id: str, low: int, high: int, now: float, levels: Sequence[SpendLevel]
    ) -> int | None:
        with self._immediate() as db:
            row = db.execute(
                "SELECT state, amount_micros FROM credit_reservations WHERE key_id = ? AND request_id = ?",
                (key_id, request_id),
            ).fetchone()
            if row is not None:
                return int(row[1]) if row[0] == "open" else None
            key = db.execute(
                "SELECT credit_limit_micros, credit_used_micros, credit_reserved_micros"
                " FROM keys WHERE id = ?",
                (key_id,),
            ).fetchone()
            if key is None:
                return None
            limit, used, reserved = key
            amount = high if limit is None else min(high, limit - used - reserved)
            for level in levels:
                if level.limit is not None and amount >= low:
                    spent, held = db.execute(SPENT, (level.scope, level.since, level.bucket)).fetchone()
                    amount = min(amount, level.limit - spent - held)
            if amount < low:
                return None
            db.execute(
                "UPDATE keys SET credit_reserved_micros = credit_reserved_micros + ? WHERE id = ?",
                (amount, key_id),
            )
            self._hold(db, key_id, request_id, amount, now, levels)
            return int(amount)

    async def settle(self, key_id: str, request_id: str, actual_micros: int) -> bool:
        if actual_micros < 0:
            raise ValueError("a charge cannot be negative")
        self._claim_credits()
        return await self._run(self._settle, key_id, request_id, actual_micros, time.time())

    def _settle(self, key_id: str, request_id: str, actual: int, now: float) -> bool:
        with self._immediate() as db:
            row = db.execute(
                "SELECT state, amount_micros, holds FROM credit_reservations"
                " WHERE key_id = ? AND request_id = ?",
                (key_id, request_id),
            ).fetchone()
            if row is not None and row[0] not in ("open", "expired"):
                return False
            # An expired reservation's money already went back: charge what was spent, nothing more.
            reserved = 0 if row is None or row[0] == "expired" else int(row[1])
            if db.execute(_CHARGE, (reserved, actual, actual, key_id)).rowcount == 0:
                return False
            if row is not None and row[2]:
                for scope, bucket in db.execute(_HOLDS_OF, (key_id, request_id)).fetchall():
                    db.execute(MOVE_LEVEL, (scope, bucket, actual, -reserved))
            # A settle with no reservation still leaves a row, so that a repeat is a no-op.
            db.execute(
                "INSERT INTO credit_reservations (key_id, request_id, amount_micros, settled_micros, state,"
                " created_at) VALUES (?, ?, ?, ?, 'settled', ?) ON CONFLICT (key_id, request_id)"
                " DO UPDATE SET state = 'settled', settled_micros = excluded.settled_micros",
                (key_id, request_id, reserved, actual, now),
            )
            return True

    async def release(self, key_id: str, request_id: str) -> bool:
        self._claim_credits()
        return await self._run(self._release, key_id, request_id)

    def _release(self, key_id: str, request_id: str) -> bool:
        with self._immediate() as db:
            row = db.execute(
                "SELECT amount_micros, holds FROM credit_reservations WHERE key_id = ? AND request_id = ?"
                " AND state = 'open'",
                (key_id, request_id),
            ).fetchone()
            if row is None:
                return False
            if row[1]:
                for scope, bucket in db.execute(_HOLDS_OF, (key_id, request_id)).fetchall():
                    db.execute(MOVE_LEVEL, (scope, bucket, 0, -row[0]))
            db.execute(
                "UPDATE credit_reservations SET state = 'released' WHERE key_id = ? AND request_id = ?",
                (key_id, request_id),
            )
            db.execute(
                "UPDATE keys SET credit_reserved_micros = credit_reserved_micros - ? WHERE id = ?",
                (row[0], key_id),
            )
            return True

    async def release_stale(self, before: float) -> int:
        self._claim_credits()
        return await self._run(self._release_stale, before)

    def _release_stale(self, before: float) -> int:
        with self._immediate() as db:
            _unhold(
                db, "credit_reservations.state = 'open' AND credit_reservations.created_at < ?", (before,)
            )
            totals = db.execute(
                "SELECT key_id, SUM(amount_micros) FROM credit_reservations"
                " WHERE state = 'open' AND created_at < ? GROUP BY key_id",
                (before,),
            ).fetchall()
            released = db.execute(
                "UPDATE credit_reservations SET state = 'released' WHERE state = 'open' AND created_at < ?",
                (before,),
            ).rowcount
            db.executemany(
                "UPDATE keys SET credit_reserved_micros = credit_reserved_micros - ? WHERE id = ?",
                [(total, key_id) for key_id, total in totals],
            )
            return int(released)

    async def renew_lease(self, until: float) -> None:
        await self._run(self._renew, until)

    def _renew(self, until: float) -> None:
        with self._immediate() as db:
            db.execute(_RENEW, (self.holder_id, until))
        self._leased = True

    async def end_lease(self) -> None:
        await self._run(
            self._db.execute, "DELETE FROM reservation_holders WHERE holder_id = ?", (self.holder_id,)
        )
        self._leased = False

    async def reclaim_expired(self, now: float) -> int:
        self._claim_credits()
        return await self._run(self._reclaim_expired, now)

    def _reclaim_expired(self, now: float) -> int:
        with self._immediate() as db:
            _unhold(db, _EXPIRED_WHERE, (self.holder_id, now))
            totals = db.execute(
                f"SELECT key_id, SUM(amount_micros) FROM credit_reservations WHERE {_EXPIRED_WHERE}"
                " GROUP BY key_id",
                (self.holder_id, now),
            ).fetchall()
            reclaimed = db.execute(
                f"UPDATE credit_reservations SET state = 'expired' WHERE {_EXPIRED_WHERE}",
                (self.holder_id, now),
            ).rowcount
            db.executemany(
                "UPDATE keys SET credit_reserved_micros = credit_reserved_micros - ? WHERE id = ?",
                [(total, key_id) for key_id, total in totals],
            )
            db.execute(
                "DELETE FROM reservation_holders WHERE lease_until < ?", (now - HOLDER_RETENTION_SECONDS,)
            )
            return int(reclaimed)

    async def reservation_state(self, key_id: str, request_id: str) -> str | None:
        """'open', 'settled' or 'released'; None when the file has no row for the request."""
        row = await self._run(
            self._fetchone,
            "SELECT state FROM credit_reservations WHERE key_id = ? AND request_id = ?",
            (key_id, request_id),
        )
        return None if row is None else str(row[0])

    async def balance(self, key_id: str) -> Balance | None:
        row = await self._run(
            self._fetchone,
            "SELECT credit_limit_micros, credit_used_micros, credit_reserved_micros FROM keys WHERE id = ?",
            (key_id,),
        )
        return None if row is None else Balance(row[0], row[1], row[2])

    async def spent(self, levels: Sequence[SpendLevel]) -> list[Spend]:
        return await self._run(self._spent, levels)

    def _spent(self, levels: Sequence[SpendLevel]) -> list[Spend]:
        found = []
        for level in levels:
            used, held = self._db.execute(SPENT, (level.scope, level.since, level.bucket)).fetchone()
            found.append(Spend(int(used), int(held)))
        return found

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

    # ledger

    async def append_ledger(self, records: Sequence[LedgerRecord]) -> None:
        if records:
            await self._run(self._append_ledger, records)

    def _append_ledger(self, rows: Sequence[LedgerRecord]) -> None:
        with self._immediate() as db:
            db.executemany(_LEDGER_INSERT, [(*row[:-1], attempts_json(row.attempts)) for row in rows])

    async def ledger_record(self, request_id: str, key_id: str) -> LedgerRecord | None:
        row = await self._run(
            self._fetchone, f"{_LEDGER_SELECT} WHERE key_id = ? AND request_id = ?", (key_id, request_id)
        )
        return None if row is None else _ledger_from_row(row)

    async def ledger_sum(self, key_id: str) -> int:
        row = await self._run(
            self._fetchone,
            "SELECT COALESCE(SUM(cost_micros), 0) FROM usage_ledger WHERE key_id = ?",
            (key_id,),
        )
        return int(row[0])

    # stored responses

    async def insert_response(self, record: StoredResponse) -> None:
        await self._run(self._db.execute, _RESPONSE_INSERT, _response_row(record))

    async def get_response(self, response_id: str, key_id: str) -> StoredResponse | None:
        row = await self._run(
            self._fetchone, f"{_RESPONSE_SELECT} WHERE id = ? AND key_id = ?", (response_id, key_id)
        )
        return None if row is None else _response_from_row(row)

    async def delete_response(self, response_id: str, key_id: str) -> bool:
        cursor = await self._run(
            self._db.execute,
            "DELETE FROM stored_responses WHERE id = ? AND key_id = ?",
            (response_id, key_id),
        )
        return bool(cursor.rowcount)

    async def update_response(self, record: StoredResponse, expected: Sequence[str]) -> bool:
        if not expected:
            return False
        cursor = await self._run(
            self._db.execute,
            _RESPONSE_UPDATE.format(", ".join("?" for _ in expected)),
            (
                record.status,
                record.model,
                record.provider,
                record.response,
                record.upstream_id,
                record.reservation_id,
                record.lease_until,
                record.id,
                record.key_id,
                *expected,
            ),
        )
        return bool(cursor.rowcount)

    async def renew_response_leases(self, response_ids: Sequence[str], until: float) -> None:
        if response_ids:
            marks = ", ".join("?" for _ in response_ids)
            await self._run(
                self._db.execute,
                f"UPDATE stored_responses SET lease_until = ? WHERE id IN ({marks})"
                " AND status IN ('queued', 'in_progress')",
                (until, *response_ids),
            )

    async def expired_responses(self, now: float) -> list[StoredResponse]:
        rows = await self._run(
            lambda: self._db.execute(
                f"{_RESPONSE_SELECT} WHERE status IN ('queued', 'in_progress') AND lease_until < ?", (now,)
            ).fetchall()
        )
        return [_response_from_row(row) for row in rows]

    async def delete_responses_before(self, before: float) -> int:
        cursor = await self._run(
            self._db.execute, "DELETE FROM stored_responses WHERE created_at < ?", (before,)
        )
        return int(cursor.rowcount)

    async def list_generations(
        self, where: GenerationFilter, limit: int, cursor: Cursor | None = None
    ) -> GenerationPage:
        sql, params = generations_sql(where, limit, cursor, qmark, row_compare=False)
        rows = await self._run(lambda: self._db.execute(sql, params).fetchall())
        return page_of([_ledger_from_row(row) for row in rows], limit)

    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        return await self._run(self._usage, query)

    def _usage(self, query: UsageQuery) -> list[UsageRow]:
        sql, params = usage_sql(query, qmark, percentiles=False)
        sums = self._db.execute(sql, params).fetchall()
        sql, params = latencies_sql(query, qmark)
        latencies: dict[tuple[Any, Any], list[float]] = {}
        for bucket, group, latency in self._db.execute(sql, params):
            latencies.setdefault((bucket, group), []).append(latency)
        rows = []
        for row in sums:
            if not row[2]:
                continue  # totals over no records: no row, as in every store
            ordered = latencies.get((row[0], row[1]), [])
            rows.append(usage_row(row, percentile(ordered, 0.5), percentile(ordered, 0.95)))
        return rows

    async def append_audit(self, event: AuditEvent) -> None:
        await self._run(
            self._db.execute,
            "INSERT INTO audit_log (at, actor, action, target, source, via, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (event.at, event.actor, event.action, event.target, event.source, event.via, event.detail),
        )

    async def list_audit(self, limit: int, before_id: int | None = None) -> list[AuditEvent]:
        sql = "SELECT id, at, actor, action, target, source, via, detail FROM audit_log"
        params: tuple[Any, ...] = (limit,)
        if before_id is not None:
            sql += " WHERE id < ?"
            params = (before_id, limit)
        rows = await self._run(lambda: self._db.execute(sql + " ORDER BY id DESC LIMIT ?", params).fetchall())
        return [_audit_from_row(row) for row in rows]


def _response_row(record: StoredResponse) -> tuple[Any, ...]:
    return tuple(getattr(record, column) for column in STORED_RESPONSE_COLUMNS)


def _response_from_row(row: Sequence[Any]) -> StoredResponse:
    values = dict(zip(STORED_RESPONSE_COLUMNS, row, strict=True))
    values["background"] = bool(values["background"])
    values["response"] = bytes(values["response"])
    values["input_items"] = bytes(values["input_items"])
    return StoredResponse(**values)


def _audit_from_row(row: Sequence[Any]) -> AuditEvent:
    return AuditEvent(
        id=row[0],
        at=row[1],
        actor=row[2],
        action=row[3],
        target=row[4],
        source=row[5],
        via=row[6],
        detail=row[7],
    )


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
    for name, statements in ACCOUNT_MIGRATIONS:
        if name not in applied:
            for statement in statements:
                db.execute(statement)
            db.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", (name, time.time()))


def _unhold(db: sqlite3.Connection, where: str, params: Sequence[Any]) -> None:
    """Give back what the reservations `where` picks hold in their levels (before they close)."""
    held = db.execute(_HELD_BY_LEVEL.format(where), params).fetchall()
    db.executemany(MOVE_LEVEL, [(scope, bucket, 0, -amount) for scope, bucket, amount in held])


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


def _ledger_from_row(row: Sequence[Any]) -> LedgerRecord:
    values = dict(zip(LEDGER_COLUMNS, row, strict=True))
    values["streamed"] = bool(values["streamed"])
    values["attempts"] = attempts_from_json(values["attempts"])
    return LedgerRecord(**values)
