"""Credits in Postgres: reservations, settlements and the spend levels they hold
(PostgresAccountStore's money).

Credits are exact across any number of replicas because each credit operation is ONE statement:
a conditional `UPDATE keys ... WHERE used + reserved + amount <= limit` joined in a CTE with the
write to `credit_reservations`. Under READ COMMITTED, concurrent updates of a key's row queue on
its row lock and each re-checks the WHERE clause against the row as the previous one left it, so
no interleaving can admit more than the limit covers. One statement is also one round trip.

A reservation that must also fit spend levels (a period budget, a team, the global budget; see
budgets.py) is one transaction instead: the key's row locked, an advisory lock per level, the
levels' windows summed, then the holds written; its settle and release are one transaction too.
The lock order that keeps these free of deadlocks is written beside their SQL below.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import asyncpg

from server.accounts.budgets import Spend, SpendLevel
from server.accounts.postgres_leases import MOVE_LEVEL, PostgresLeases
from server.accounts.store import Balance, check_reserve_bounds

__all__ = ["PostgresCredits"]

_RESERVE = """
WITH k AS (
    UPDATE keys SET credit_reserved_micros = credit_reserved_micros + $3
    WHERE id = $1 AND (credit_limit_micros IS NULL
                       OR credit_used_micros + credit_reserved_micros + $3 <= credit_limit_micros)
    RETURNING id
)
INSERT INTO credit_reservations (key_id, request_id, amount_micros, state, created_at, holder_id)
SELECT id, $2, $3, 'open', $4, $5 FROM k
RETURNING 1
"""
# The row lock taken by FOR UPDATE makes the amount and the update one step: a concurrent reserve
# waits for it, then reads the balance this one left.
_RESERVE_UP_TO = """
WITH cur AS (
    SELECT id, CASE WHEN credit_limit_micros IS NULL THEN $4::bigint
                    ELSE LEAST($4::bigint, credit_limit_micros - credit_used_micros - credit_reserved_micros)
               END AS amount
    FROM keys WHERE id = $1 FOR UPDATE
), k AS (
    UPDATE keys SET credit_reserved_micros = credit_reserved_micros + cur.amount
    FROM cur WHERE keys.id = cur.id AND cur.amount >= $3::bigint
    RETURNING cur.amount
)
INSERT INTO credit_reservations (key_id, request_id, amount_micros, state, created_at, holder_id)
SELECT $1, $2, amount, 'open', $5, $6 FROM k
RETURNING amount_micros
"""
_SETTLE_OPEN = """
WITH r AS (
    UPDATE credit_reservations SET state = 'settled', settled_micros = $3
    WHERE key_id = $1 AND request_id = $2 AND state = 'open' AND holds = 0
    RETURNING amount_micros
)
UPDATE keys SET credit_reserved_micros = credit_reserved_micros - r.amount_micros,
                credit_used_micros = credit_used_micros + $3
FROM r WHERE keys.id = $1
RETURNING 1
"""
# A reservation reclaimed from a process thought dead: its money went back, so charge what was spent.
_SETTLE_EXPIRED = """
WITH r AS (
    UPDATE credit_reservations SET state = 'settled', settled_micros = $3
    WHERE key_id = $1 AND request_id = $2 AND state = 'expired' AND holds = 0
    RETURNING 1
)
UPDATE keys SET credit_used_micros = credit_used_micros + $3
FROM r WHERE keys.id = $1
RETURNING 1
"""
# A settle with no reservation still leaves a row, so that a repeat is a no-op.
_SETTLE_UNRESERVED = """
WITH ins AS (
    INSERT INTO credit_reservations (key_id, request_id, amount_micros, settled_micros, state, created_at)
    SELECT id, $2, 0, $3, 'settled', $4 FROM keys WHERE id = $1
    ON CONFLICT (key_id, request_id) DO NOTHING
    RETURNING key_id
)
UPDATE keys SET credit_used_micros = credit_used_micros + $3
FROM ins WHERE keys.id = ins.key_id
RETURNING 1
"""
_RELEASE = """
WITH r AS (
    UPDATE credit_reservations SET state = 'released'
    WHERE key_id = $1 AND request_id = $2 AND state = 'open' AND holds = 0
    RETURNING amount_micros
)
UPDATE keys SET credit_reserved_micros = credit_reserved_micros - r.amount_micros
FROM r WHERE keys.id = $1
RETURNING 1
"""
# advisory lock per level (sorted by scope), then the levels' bucket rows (sorted). A settle or a
# release of one takes its reservation's row, the key's row, then the bucket rows (sorted); a sweep
# the reservations' rows, the keys' rows, then the bucket rows (sorted). One order, so no deadlock;
# the advisory lock makes a level's check and its hold one step across replicas.
_LEVEL_LOCK_CLASS = 0x51_72_61  # the first key of pg_advisory_xact_lock(int, int): ours, not another's
_KEY_FOR_RESERVE = """
SELECT credit_limit_micros, credit_used_micros, credit_reserved_micros,
       (SELECT state FROM credit_reservations WHERE key_id = $1 AND request_id = $2) AS state,
       (SELECT amount_micros FROM credit_reservations WHERE key_id = $1 AND request_id = $2) AS held
FROM keys WHERE id = $1 FOR UPDATE
"""
_LOCK_LEVELS = "SELECT pg_advisory_xact_lock($1, hashtext(scope)) FROM unnest($2::text[]) AS scope"
_SPENT = """
SELECT l.i, COALESCE(sum(b.used_micros), 0)::bigint, COALESCE(sum(b.reserved_micros), 0)::bigint
FROM unnest($1::text[], $2::bigint[], $3::bigint[]) WITH ORDINALITY AS l(scope, since, bucket, i)
LEFT JOIN budget_spend b ON b.scope = l.scope AND b.bucket >= l.since AND b.bucket <= l.bucket
GROUP BY l.i ORDER BY l.i
"""
_HOLD_KEY = """
WITH k AS (
    UPDATE keys SET credit_reserved_micros = credit_reserved_micros + $3 WHERE id = $1 RETURNING 1
), r AS (
    INSERT INTO credit_reservations (key_id, request_id, amount_micros, state, created_at, holder_id, holds)
    SELECT $1, $2, $3, 'open', $4, $5, cardinality($6::text[]) FROM k
    RETURNING 1
)
INSERT INTO credit_holds (key_id, request_id, scope, bucket)
SELECT $1, $2, scope, bucket FROM unnest($6::text[], $7::bigint[]) AS h(scope, bucket), r
"""
_HOLD_LEVEL = """
INSERT INTO budget_spend (scope, bucket, used_micros, reserved_micros) VALUES ($1, $2, 0, $3)
ON CONFLICT (scope, bucket) DO UPDATE SET reserved_micros = budget_spend.reserved_micros + $3
"""
# Close a reservation that holds levels ($3: the new state, $4: the charge); its old state, amount
# and levels (sorted), or nothing when it was not open (nor expired, for a settle).
_CLOSE_HELD = """
WITH old AS (
    SELECT state, amount_micros FROM credit_reservations
    WHERE key_id = $1 AND request_id = $2 AND holds > 0 AND state = ANY($5::text[])
    FOR UPDATE
), c AS (
    UPDATE credit_reservations SET state = $3, settled_micros = $4
    FROM old WHERE key_id = $1 AND request_id = $2
    RETURNING 1
)
SELECT old.state, old.amount_micros,
       ARRAY(SELECT scope FROM credit_holds WHERE key_id = $1 AND request_id = $2 ORDER BY scope),
       ARRAY(SELECT bucket FROM credit_holds WHERE key_id = $1 AND request_id = $2 ORDER BY scope)
FROM old, c
"""


class PostgresCredits(PostgresLeases):
    async def set_credit_limit(self, key_id: str, limit_micros: int | None) -> Balance | None:
        row = await self._pool.fetchrow(
            "UPDATE keys SET credit_limit_micros = $2 WHERE id = $1"
            " RETURNING credit_limit_micros, credit_used_micros, credit_reserved_micros",
            key_id,
            limit_micros,
        )
        return None if row is None else Balance(row[0], row[1], row[2])

    # credits

    async def reserve(self, key_id: str, request_id: str, amount_micros: int) -> bool:
        if amount_micros < 0:
            raise ValueError("a reservation cannot be negative")
        if not self._leased:
            await self.renew_lease(time.time() + self.lease_seconds)
        try:
            if (
                await self._pool.fetchval(
                    _RESERVE, key_id, request_id, amount_micros, time.time(), self.holder_id
                )
                is not None
            ):
                return True
        except asyncpg.UniqueViolationError:
            pass  # the statement rolled back whole; report the existing reservation
        state = await self._pool.fetchval(
            "SELECT state FROM credit_reservations WHERE key_id = $1 AND request_id = $2", key_id, request_id
        )
        return bool(state == "open")

    async def reserve_up_to(
        self,
        key_id: str,
        request_id: str,
        minimum_micros: int,
        maximum_micros: int,
        levels: Sequence[SpendLevel] = (),
    ) -> int | None:
        check_reserve_bounds(minimum_micros, maximum_micros)
        if not self._leased:
            await self.renew_lease(time.time() + self.lease_seconds)
        if levels:
            try:
                held = await self._reserve_within(key_id, request_id, minimum_micros, maximum_micros, levels)
            except asyncpg.UniqueViolationError:
                # The same id reserved at the same moment: the transaction rolled back whole.
                held = await self._open_amount(key_id, request_id)
            if held is not None:
                self._with_levels.add((key_id, request_id))
            return held
        try:
            held = await self._pool.fetchval(
                _RESERVE_UP_TO,
                key_id,
                request_id,
                minimum_micros,
                maximum_micros,
                time.time(),
                self.holder_id,
            )
            if held is not None:
                return int(held)
        except asyncpg.UniqueViolationError:
            pass  # the statement rolled back whole; report the existing reservation
        return await self._open_amount(key_id, request_id)

    async def _open_amount(self, key_id: str, request_id: str) -> int | None:
        """What an existing reservation holds while it is open; None otherwise."""
        row = await self._pool.fetchrow(
            "SELECT state, amount_micros FROM credit_reservations WHERE key_id = $1 AND request_id = $2",
            key_id,
            request_id,
        )
        return int(row[1]) if row is not None and row[0] == "open" else None

    async def _reserve_within(
        self, key_id: str, request_id: str, low: int, high: int, levels: Sequence[SpendLevel]
    ) -> int | None:
        """`reserve_up_to` that must also fit `levels`: one transaction, in the lock order above."""
        ordered = sorted(levels, key=lambda level: level.scope)
        scopes = [level.scope for level in ordered]
        buckets = [level.bucket for level in ordered]
        async with self._pool.acquire() as connection, connection.transaction():
            key = await connection.fetchrow(_KEY_FOR_RESERVE, key_id, request_id)
            if key is None:
                return None
            if key["state"] is not None:
                return int(key["held"]) if key["state"] == "open" else None
            limit, used, reserved = key[0], key[1], key[2]
            amount = high if limit is None else min(high, limit - used - reserved)
            if amount < low:
                return None
            await connection.execute(_LOCK_LEVELS, _LEVEL_LOCK_CLASS, scopes)
            limited = [level for level in ordered if level.limit is not None]
            if limited:
                rows = await connection.fetch(
                    _SPENT,
                    [level.scope for level in limited],
                    [level.since for level in limited],
                    [level.bucket for level in limited],
                )
                for level, row in zip(limited, rows, strict=True):
                    assert level.limit is not None
                    amount = min(amount, level.limit - row[1] - row[2])
            if amount < low:
                return None
            await connection.execute(
                _HOLD_KEY, key_id, request_id, amount, time.time(), self.holder_id, scopes, buckets
            )
            await connection.executemany(
                _HOLD_LEVEL, [(scope, bucket, amount) for scope, bucket in zip(scopes, buckets, strict=True)]
            )
            return int(amount)

    async def _close_held(self, key_id: str, request_id: str, actual: int | None) -> bool:
        """Settle (`actual` charged) or release (None) a reservation that holds levels; False when
        there is no such reservation open (nor expired, for a settle)."""
        states = ["open", "expired"] if actual is not None else ["open"]
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                _CLOSE_HELD,
                key_id,
                request_id,
                "settled" if actual is not None else "released",
                actual,
                states,
            )
            if row is None:
                return False
            # An expired reservation's money already went back: charge what was spent, nothing more.
            reserved = int(row[1]) if row[0] == "open" else 0
            await connection.execute(
                "UPDATE keys SET credit_reserved_micros = credit_reserved_micros - $2,"
                " credit_used_micros = credit_used_micros + $3 WHERE id = $1",
                key_id,
                reserved,
                actual or 0,
            )
            await connection.executemany(
                MOVE_LEVEL,
                [
                    (scope, bucket, actual or 0, -reserved)
                    for scope, bucket in zip(row[2], row[3], strict=True)
                ],
            )
        self._with_levels.discard((key_id, request_id))
        return True

    async def settle(self, key_id: str, request_id: str, actual_micros: int) -> bool:
        if actual_micros < 0:
            raise ValueError("a charge cannot be negative")
        if (key_id, request_id) in self._with_levels:
            return await self._close_held(key_id, request_id, actual_micros)
        if await self._pool.fetchval(_SETTLE_OPEN, key_id, request_id, actual_micros) is not None:
            return True
        if await self._pool.fetchval(_SETTLE_EXPIRED, key_id, request_id, actual_micros) is not None:
            return True
        now = time.time()
        if await self._pool.fetchval(_SETTLE_UNRESERVED, key_id, request_id, actual_micros, now) is not None:
            return True
        # A reservation with levels that another store instance made.
        return await self._close_held(key_id, request_id, actual_micros)

    async def release(self, key_id: str, request_id: str) -> bool:
        if (key_id, request_id) not in self._with_levels:
            if await self._pool.fetchval(_RELEASE, key_id, request_id) is not None:
                return True
        return await self._close_held(key_id, request_id, None)

    async def balance(self, key_id: str) -> Balance | None:
        row = await self._pool.fetchrow(
            "SELECT credit_limit_micros, credit_used_micros, credit_reserved_micros FROM keys WHERE id = $1",
            key_id,
        )
        return None if row is None else Balance(row[0], row[1], row[2])

    async def spent(self, levels: Sequence[SpendLevel]) -> list[Spend]:
        if not levels:
            return []
        rows = await self._pool.fetch(
            _SPENT,
            [level.scope for level in levels],
            [level.since for level in levels],
            [level.bucket for level in levels],
        )
        return [Spend(int(row[1]), int(row[2])) for row in rows]
