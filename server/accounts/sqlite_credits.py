"""Credits in the SQLite file: reservations, settlements, the spend levels they hold, and the
leases that vouch for this process's open reservations (SqliteAccountStore's money)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from server.accounts.budgets import Spend, SpendLevel
from server.accounts.money import micros_to_usd
from server.accounts.sqlite_connection import SqliteConnection
from server.accounts.store import Balance, check_reserve_bounds

__all__ = ["HOLDER_RETENTION_SECONDS", "HOLD_LEVEL", "MOVE_LEVEL", "SPENT", "SqliteCredits"]

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


class SqliteCredits(SqliteConnection):
    async def set_credit_limit(self, key_id: str, limit_micros: int | None) -> Balance | None:
        self._claim_credits()
        usd = None if limit_micros is None else micros_to_usd(limit_micros)
        await self._run(
            self._db.execute,
            "UPDATE keys SET credit_limit_micros = ?, credit_limit = ? WHERE id = ?",
            (limit_micros, usd, key_id),
        )
        return await self.balance(key_id)

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


def _unhold(db: sqlite3.Connection, where: str, params: Sequence[Any]) -> None:
    """Give back what the reservations `where` picks hold in their levels (before they close)."""
    held = db.execute(_HELD_BY_LEVEL.format(where), params).fetchall()
    db.executemany(MOVE_LEVEL, [(scope, bucket, 0, -amount) for scope, bucket, amount in held])
