"""The leases on PostgresAccountStore's reservations, and the sweeps that close the reservations of
processes whose lease ended (or that are simply too old): one statement, then the levels they held
given back, in one transaction."""

from __future__ import annotations

from typing import Any

from server.accounts.postgres_connection import PostgresConnection

__all__ = ["HOLDER_RETENTION_SECONDS", "MOVE_LEVEL", "PostgresLeases"]

_RELEASE_STALE = """
WITH r AS (
    UPDATE credit_reservations SET state = 'released'
    WHERE state = 'open' AND created_at < $1
    RETURNING key_id, request_id, amount_micros, holds
), totals AS (
    SELECT key_id, sum(amount_micros)::bigint AS total FROM r GROUP BY key_id
), k AS (
    UPDATE keys SET credit_reserved_micros = credit_reserved_micros - totals.total
    FROM totals WHERE keys.id = totals.key_id
    RETURNING 1
)
SELECT count(*), array_agg(key_id) FILTER (WHERE holds > 0), array_agg(request_id) FILTER (WHERE holds > 0)
FROM r
"""


# Every other holder whose lease ended (or that ended it) loses its open reservations, one statement.
_RECLAIM = """
WITH r AS (
    UPDATE credit_reservations c SET state = 'expired'
    WHERE c.state = 'open' AND c.holder_id IS NOT NULL AND c.holder_id <> $2
      AND NOT EXISTS (
          SELECT 1 FROM reservation_holders h WHERE h.holder_id = c.holder_id AND h.lease_until >= $1
      )
    RETURNING c.key_id, c.request_id, c.amount_micros, c.holds
), totals AS (
    SELECT key_id, sum(amount_micros)::bigint AS total FROM r GROUP BY key_id
), k AS (
    UPDATE keys SET credit_reserved_micros = credit_reserved_micros - totals.total
    FROM totals WHERE keys.id = totals.key_id
    RETURNING 1
)
SELECT count(*), array_agg(key_id) FILTER (WHERE holds > 0), array_agg(request_id) FILTER (WHERE holds > 0)
FROM r
"""
# Reservations that must fit spend levels (budgets.py) take, in this order: the key's row, an
_HELD_BY_LEVEL = """
SELECT h.scope, h.bucket, sum(c.amount_micros)::bigint
FROM unnest($1::text[], $2::text[]) AS x(key_id, request_id)
JOIN credit_reservations c ON c.key_id = x.key_id AND c.request_id = x.request_id
JOIN credit_holds h ON h.key_id = x.key_id AND h.request_id = x.request_id
GROUP BY h.scope, h.bucket ORDER BY h.scope, h.bucket
"""
_RENEW = (
    "INSERT INTO reservation_holders (holder_id, lease_until) VALUES ($1, $2)"
    " ON CONFLICT (holder_id) DO UPDATE SET lease_until = EXCLUDED.lease_until"
)
# Holders gone this long have had their reservations reclaimed: their rows are just clutter.
HOLDER_RETENTION_SECONDS = 3600.0
# (scope, bucket, charge, change of the held amount): a settle or a release of a level's hold.
MOVE_LEVEL = """
INSERT INTO budget_spend (scope, bucket, used_micros, reserved_micros) VALUES ($1, $2, $3, $4)
ON CONFLICT (scope, bucket) DO UPDATE SET used_micros = budget_spend.used_micros + $3,
                                          reserved_micros = budget_spend.reserved_micros + $4
"""


class PostgresLeases(PostgresConnection):
    async def _sweep(self, statement: str, *args: Any) -> int:
        """Run a sweep that closes reservations (`statement`), and give back what those with levels
        held in their buckets, in one transaction."""
        async with self._pool.acquire() as connection, connection.transaction():
            count, key_ids, request_ids = await connection.fetchrow(statement, *args)
            if key_ids:
                held = await connection.fetch(_HELD_BY_LEVEL, key_ids, request_ids)
                await connection.executemany(
                    MOVE_LEVEL, [(scope, bucket, 0, -amount) for scope, bucket, amount in held]
                )
        return int(count)

    async def release_stale(self, before: float) -> int:
        return await self._sweep(_RELEASE_STALE, before)

    async def renew_lease(self, until: float) -> None:
        await self._pool.execute(_RENEW, self.holder_id, until)
        self._leased = True

    async def end_lease(self) -> None:
        await self._pool.execute("DELETE FROM reservation_holders WHERE holder_id = $1", self.holder_id)
        self._leased = False

    async def reclaim_expired(self, now: float) -> int:
        reclaimed = await self._sweep(_RECLAIM, now, self.holder_id)
        await self._pool.execute(
            "DELETE FROM reservation_holders WHERE lease_until < $1", now - HOLDER_RETENTION_SECONDS
        )
        return reclaimed
