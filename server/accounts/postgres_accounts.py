"""The shared AccountStore: keys, credits and the usage ledger in Postgres (asyncpg), for replicas.

Credits are exact across any number of replicas because each credit operation is ONE statement:
a conditional `UPDATE keys ... WHERE used + reserved + amount <= limit` joined in a CTE with the
write to `credit_reservations`. Under READ COMMITTED, concurrent updates of a key's row queue on
its row lock and each re-checks the WHERE clause against the row as the previous one left it, so
no interleaving can admit more than the limit covers. One statement is also one round trip.

A reservation that must also fit spend levels (a period budget, a team, the global budget; see
budgets.py) is one transaction instead: the key's row locked, an advisory lock per level, the
levels' windows summed, then the holds written; its settle and release are one transaction too.
The lock order that keeps these free of deadlocks is written beside their SQL below.

Why Postgres, not Redis, holds reservations: the balance must be durable and the ledger must sum
to it. Reserving in Redis and charging in Postgres would need a reconciliation path for every
Redis failover or lost write; a conditional UPDATE is exact and costs one round trip either way.

Schema: named migrations in MIGRATIONS, recorded in `schema_migrations(name)` and applied under a
transaction-scoped advisory lock, so replicas starting together migrate once. `schema=` puts all
tables in one Postgres schema (via search_path), e.g. one per tenant or per test.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import asyncpg

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
    dollar,
    generations_sql,
    page_of,
    usage_row,
    usage_sql,
)
from server.accounts.money import micros_to_usd, usd_to_micros
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

__all__ = ["MIGRATIONS", "PostgresAccountStore"]

MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "accounts/0001_keys_credits_ledger",
        """
        CREATE TABLE keys (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            prefix TEXT NOT NULL,
            secret_hash TEXT NOT NULL UNIQUE,
            created_at BIGINT NOT NULL,
            expires_at BIGINT,
            revoked_at BIGINT,
            allowed_models TEXT[] NOT NULL DEFAULT '{}',
            credit_limit_micros BIGINT,
            credit_used_micros BIGINT NOT NULL DEFAULT 0,
            credit_reserved_micros BIGINT NOT NULL DEFAULT 0,
            rpm_limit BIGINT,
            tpm_limit BIGINT
        );
        CREATE TABLE credit_reservations (
            key_id TEXT NOT NULL,
            request_id TEXT NOT NULL,
            amount_micros BIGINT NOT NULL,
            settled_micros BIGINT,
            state TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (key_id, request_id)
        );
        CREATE INDEX credit_reservations_open ON credit_reservations (created_at) WHERE state = 'open';
        CREATE TABLE usage_ledger (
            request_id TEXT NOT NULL,
            key_id TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            model_requested TEXT NOT NULL,
            status TEXT NOT NULL,
            http_status INTEGER NOT NULL,
            model_served TEXT,
            provider TEXT,
            error_code TEXT,
            prompt_tokens BIGINT NOT NULL,
            completion_tokens BIGINT NOT NULL,
            cached_tokens BIGINT NOT NULL,
            reasoning_tokens BIGINT NOT NULL,
            cost_micros BIGINT NOT NULL,
            latency_ms DOUBLE PRECISION NOT NULL,
            ttft_ms DOUBLE PRECISION,
            streamed BOOLEAN NOT NULL,
            PRIMARY KEY (key_id, request_id)
        );
        """,
    ),
    (
        "accounts/0002_ledger_cache_write_tokens",
        "ALTER TABLE usage_ledger ADD COLUMN cache_write_tokens BIGINT NOT NULL DEFAULT 0;",
    ),
    (
        "accounts/0003_stored_responses",
        """
        CREATE TABLE stored_responses (
            id TEXT PRIMARY KEY,
            key_id TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            status TEXT NOT NULL,
            model TEXT NOT NULL,
            provider TEXT,
            previous_response_id TEXT,
            background BOOLEAN NOT NULL,
            response BYTEA NOT NULL,
            input_items BYTEA NOT NULL,
            upstream_id TEXT,
            reservation_id TEXT,
            lease_until DOUBLE PRECISION
        );
        CREATE INDEX stored_responses_created ON stored_responses (created_at);
        CREATE INDEX stored_responses_active ON stored_responses (lease_until)
            WHERE status IN ('queued', 'in_progress');
        """,
    ),
    (
        "accounts/0004_ledger_cache_saved",
        "ALTER TABLE usage_ledger ADD COLUMN cache_saved_micros BIGINT NOT NULL DEFAULT 0;",
    ),
    (
        "accounts/0005_ledger_attempts_indexes_audit",
        "ALTER TABLE usage_ledger ADD COLUMN attempts JSONB NOT NULL DEFAULT '[]';\n"
        + "".join(f"{index};\n" for index in LEDGER_INDEXES)
        + """
        CREATE TABLE audit_log (
            id BIGSERIAL PRIMARY KEY,
            at DOUBLE PRECISION NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT,
            source TEXT,
            via TEXT,
            detail JSONB NOT NULL
        );
        """,
    ),
    (
        "accounts/0006_key_cache_namespace",
        # NULL: the key's own id (keys.cache_namespace_of).
        "ALTER TABLE keys ADD COLUMN cache_namespace TEXT;",
    ),
    (
        "accounts/0007_ledger_store_bodies",
        "ALTER TABLE usage_ledger ADD COLUMN prompt_text TEXT;\n"
        "ALTER TABLE usage_ledger ADD COLUMN answer_text TEXT;\n",
    ),
    (
        "accounts/0008_reservation_leases",
        """
        ALTER TABLE credit_reservations ADD COLUMN holder_id TEXT;
        CREATE INDEX credit_reservations_held ON credit_reservations (holder_id) WHERE state = 'open';
        CREATE TABLE reservation_holders (
            holder_id TEXT PRIMARY KEY,
            lease_until DOUBLE PRECISION NOT NULL
        );
        """,
    ),
    (
        "accounts/0009_ledger_token_source",
        "ALTER TABLE usage_ledger ADD COLUMN token_source TEXT NOT NULL DEFAULT 'reported';",
    ),
    (
        "accounts/0010_teams_and_budgets",
        """
        ALTER TABLE keys ADD COLUMN team_id TEXT;
        ALTER TABLE keys ADD COLUMN budget_limit_micros BIGINT;
        ALTER TABLE keys ADD COLUMN budget_period TEXT;
        ALTER TABLE keys ADD COLUMN budget_reset TEXT;
        CREATE INDEX keys_team ON keys (team_id) WHERE team_id IS NOT NULL;
        CREATE TABLE teams (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            credit_limit_micros BIGINT,
            budget_limit_micros BIGINT,
            budget_period TEXT,
            budget_reset TEXT,
            rpm_limit BIGINT,
            tpm_limit BIGINT
        );
        CREATE TABLE budget_spend (
            scope TEXT NOT NULL,
            bucket BIGINT NOT NULL,
            used_micros BIGINT NOT NULL DEFAULT 0,
            reserved_micros BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (scope, bucket)
        );
        CREATE TABLE credit_holds (
            key_id TEXT NOT NULL,
            request_id TEXT NOT NULL,
            scope TEXT NOT NULL,
            bucket BIGINT NOT NULL,
            PRIMARY KEY (key_id, request_id, scope)
        );
        ALTER TABLE credit_reservations ADD COLUMN holds INTEGER NOT NULL DEFAULT 0;
        """,
    ),
    (
        "accounts/0011_ledger_upstream_cost",
        "ALTER TABLE usage_ledger ADD COLUMN upstream_cost_micros BIGINT NOT NULL DEFAULT 0;\n"
        "ALTER TABLE usage_ledger ADD COLUMN upstream_reported_cost_micros BIGINT;\n",
    ),
    (
        # created_at is in seconds: rows made in the same second list in the order they were made.
        "accounts/0012_creation_order",
        "ALTER TABLE keys ADD COLUMN created_seq BIGSERIAL;\n"
        "ALTER TABLE teams ADD COLUMN created_seq BIGSERIAL;\n",
    ),
)

_RESPONSE_SELECT = f"SELECT {', '.join(STORED_RESPONSE_COLUMNS)} FROM stored_responses"
_RESPONSE_INSERT = (
    f"INSERT INTO stored_responses ({', '.join(STORED_RESPONSE_COLUMNS)})"
    f" VALUES ({', '.join(f'${i}' for i in range(1, len(STORED_RESPONSE_COLUMNS) + 1))})"
)
_RESPONSE_UPDATE = (
    "UPDATE stored_responses SET status = $1, model = $2, provider = $3, response = $4, upstream_id = $5,"
    " reservation_id = $6, lease_until = $7 WHERE id = $8 AND key_id = $9 AND status = ANY($10::text[])"
)

_MIGRATION_LOCK = "siraya.accounts.migrations"
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

_KEY_COLUMNS = (
    "id, name, prefix, created_at, expires_at, revoked_at, allowed_models,"
    " credit_limit_micros, credit_used_micros, rpm_limit, tpm_limit, cache_namespace,"
    " team_id, budget_limit_micros, budget_period, budget_reset"
)
_LEDGER_INSERT = (
    f"INSERT INTO usage_ledger ({', '.join(LEDGER_COLUMNS)})"
    f" VALUES ({', '.join(f'${i}' for i in range(1, len(LEDGER_COLUMNS) + 1))})"
    " ON CONFLICT (key_id, request_id) DO NOTHING"
)

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
# (scope, bucket, charge, change of the held amount): a settle or a release of a level's hold.
_MOVE_LEVEL = """
INSERT INTO budget_spend (scope, bucket, used_micros, reserved_micros) VALUES ($1, $2, $3, $4)
ON CONFLICT (scope, bucket) DO UPDATE SET used_micros = budget_spend.used_micros + $3,
                                          reserved_micros = budget_spend.reserved_micros + $4
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


class PostgresAccountStore:
    """AccountStore over an asyncpg pool. Open it with `await PostgresAccountStore.open(dsn)`."""

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
    ) -> PostgresAccountStore:
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

    # keys

    async def insert_key(self, record: KeyRecord, secret_hash: str) -> None:
        await self._pool.execute(
            "INSERT INTO keys (id, name, prefix, secret_hash, created_at, expires_at, allowed_models,"
            " credit_limit_micros, rpm_limit, tpm_limit, cache_namespace, team_id, budget_limit_micros,"
            " budget_period, budget_reset)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            record.id,
            record.name,
            record.prefix,
            secret_hash,
            record.created_at,
            record.expires_at,
            list(record.allowed_models),
            None if record.credit_limit is None else usd_to_micros(record.credit_limit),
            record.rpm_limit,
            record.tpm_limit,
            record.cache_namespace,
            record.team_id,
            *(value for _, value in budget_columns(record.budget)),
        )

    async def key_by_hash(self, secret_hash: str) -> tuple[KeyRecord, str] | None:
        row = await self._pool.fetchrow(
            f"SELECT {_KEY_COLUMNS}, secret_hash FROM keys WHERE secret_hash = $1", secret_hash
        )
        return None if row is None else (_key_from_row(row), row["secret_hash"])

    async def key_by_id(self, key_id: str) -> KeyRecord | None:
        row = await self._pool.fetchrow(f"SELECT {_KEY_COLUMNS} FROM keys WHERE id = $1", key_id)
        return None if row is None else _key_from_row(row)

    async def list_keys(self) -> list[KeyRecord]:
        rows = await self._pool.fetch(f"SELECT {_KEY_COLUMNS} FROM keys ORDER BY created_at, created_seq")
        return [_key_from_row(row) for row in rows]

    async def revoke_key(self, key_id: str, at: int) -> KeyRecord | None:
        row = await self._pool.fetchrow(
            f"UPDATE keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING {_KEY_COLUMNS}",
            key_id,
            at,
        )
        return None if row is None else _key_from_row(row)

    async def replace_secret(self, key_id: str, prefix: str, secret_hash: str) -> KeyRecord | None:
        row = await self._pool.fetchrow(
            "UPDATE keys SET prefix = $2, secret_hash = $3 WHERE id = $1 AND revoked_at IS NULL"
            f" RETURNING {_KEY_COLUMNS}",
            key_id,
            prefix,
            secret_hash,
        )
        return None if row is None else _key_from_row(row)

    async def set_credit_limit(self, key_id: str, limit_micros: int | None) -> Balance | None:
        row = await self._pool.fetchrow(
            "UPDATE keys SET credit_limit_micros = $2 WHERE id = $1"
            " RETURNING credit_limit_micros, credit_used_micros, credit_reserved_micros",
            key_id,
            limit_micros,
        )
        return None if row is None else Balance(row[0], row[1], row[2])

    async def update_key(self, key_id: str, changes: KeyChanges) -> KeyRecord | None:
        assignments = changes.assignments()
        if not assignments:
            return await self.key_by_id(key_id)
        # Column names come from CHANGEABLE_KEY_FIELDS only, never from the caller.
        columns = ", ".join(f"{column} = ${i}" for i, (column, _) in enumerate(assignments, start=2))
        values = [list(value) if isinstance(value, tuple) else value for _, value in assignments]
        row = await self._pool.fetchrow(
            f"UPDATE keys SET {columns} WHERE id = $1 RETURNING {_KEY_COLUMNS}", key_id, *values
        )
        return None if row is None else _key_from_row(row)

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
                _MOVE_LEVEL,
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

    async def _sweep(self, statement: str, *args: Any) -> int:
        """Run a sweep that closes reservations (`statement`), and give back what those with levels
        held in their buckets, in one transaction."""
        async with self._pool.acquire() as connection, connection.transaction():
            count, key_ids, request_ids = await connection.fetchrow(statement, *args)
            if key_ids:
                held = await connection.fetch(_HELD_BY_LEVEL, key_ids, request_ids)
                await connection.executemany(
                    _MOVE_LEVEL, [(scope, bucket, 0, -amount) for scope, bucket, amount in held]
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

    # teams

    async def insert_team(self, record: TeamRecord) -> None:
        await self._pool.execute(
            f"INSERT INTO teams ({TEAM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            *team_row(record),
        )

    async def team_by_id(self, team_id: str) -> TeamRecord | None:
        row = await self._pool.fetchrow(f"SELECT {TEAM_COLUMNS} FROM teams WHERE id = $1", team_id)
        return None if row is None else team_from_row(tuple(row))

    async def list_teams(self) -> list[TeamRecord]:
        rows = await self._pool.fetch(f"SELECT {TEAM_COLUMNS} FROM teams ORDER BY created_at, created_seq")
        return [team_from_row(tuple(row)) for row in rows]

    async def update_team(self, team_id: str, changes: TeamChanges) -> TeamRecord | None:
        assignments = changes.assignments()
        if not assignments:
            return await self.team_by_id(team_id)
        # Column names come from CHANGEABLE_TEAM_FIELDS only, never from the caller.
        columns = ", ".join(f"{column} = ${i}" for i, (column, _) in enumerate(assignments, start=2))
        row = await self._pool.fetchrow(
            f"UPDATE teams SET {columns} WHERE id = $1 RETURNING {TEAM_COLUMNS}",
            team_id,
            *(value for _, value in assignments),
        )
        return None if row is None else team_from_row(tuple(row))

    async def delete_team(self, team_id: str) -> TeamDeletion:
        outcome = await self._pool.fetchval(
            "WITH t AS (SELECT id FROM teams WHERE id = $1 FOR UPDATE),"
            " d AS (DELETE FROM teams WHERE id IN (SELECT id FROM t)"
            " AND NOT EXISTS (SELECT 1 FROM keys WHERE team_id = $1) RETURNING 1)"
            " SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM t) THEN 'not_found'"
            " WHEN EXISTS (SELECT 1 FROM d) THEN 'deleted' ELSE 'has_keys' END",
            team_id,
        )
        return outcome  # type: ignore[no-any-return]

    # ledger

    async def append_ledger(self, records: Sequence[LedgerRecord]) -> None:
        if records:
            await self._pool.executemany(
                _LEDGER_INSERT, [(*record[:-1], attempts_json(record.attempts)) for record in records]
            )

    async def ledger_record(self, request_id: str, key_id: str) -> LedgerRecord | None:
        row = await self._pool.fetchrow(
            f"SELECT {', '.join(LEDGER_COLUMNS)} FROM usage_ledger WHERE key_id = $1 AND request_id = $2",
            key_id,
            request_id,
        )
        return None if row is None else _ledger_from_row(row)

    async def ledger_sum(self, key_id: str) -> int:
        total = await self._pool.fetchval(
            "SELECT COALESCE(sum(cost_micros), 0) FROM usage_ledger WHERE key_id = $1", key_id
        )
        return int(total)

    # stored responses

    async def insert_response(self, record: StoredResponse) -> None:
        await self._pool.execute(
            _RESPONSE_INSERT, *(getattr(record, column) for column in STORED_RESPONSE_COLUMNS)
        )

    async def get_response(self, response_id: str, key_id: str) -> StoredResponse | None:
        row = await self._pool.fetchrow(
            f"{_RESPONSE_SELECT} WHERE id = $1 AND key_id = $2", response_id, key_id
        )
        return None if row is None else StoredResponse(**dict(row.items()))

    async def delete_response(self, response_id: str, key_id: str) -> bool:
        deleted = await self._pool.fetchval(
            "DELETE FROM stored_responses WHERE id = $1 AND key_id = $2 RETURNING 1", response_id, key_id
        )
        return deleted is not None

    async def update_response(self, record: StoredResponse, expected: Sequence[str]) -> bool:
        updated = await self._pool.fetchval(
            _RESPONSE_UPDATE + " RETURNING 1",
            record.status,
            record.model,
            record.provider,
            record.response,
            record.upstream_id,
            record.reservation_id,
            record.lease_until,
            record.id,
            record.key_id,
            list(expected),
        )
        return updated is not None

    async def renew_response_leases(self, response_ids: Sequence[str], until: float) -> None:
        if response_ids:
            await self._pool.execute(
                "UPDATE stored_responses SET lease_until = $1 WHERE id = ANY($2::text[])"
                " AND status IN ('queued', 'in_progress')",
                until,
                list(response_ids),
            )

    async def expired_responses(self, now: float) -> list[StoredResponse]:
        rows = await self._pool.fetch(
            f"{_RESPONSE_SELECT} WHERE status IN ('queued', 'in_progress') AND lease_until < $1", now
        )
        return [StoredResponse(**dict(row.items())) for row in rows]

    async def delete_responses_before(self, before: float) -> int:
        deleted = await self._pool.execute("DELETE FROM stored_responses WHERE created_at < $1", before)
        return int(deleted.split()[-1])

    async def list_generations(
        self, where: GenerationFilter, limit: int, cursor: Cursor | None = None
    ) -> GenerationPage:
        sql, params = generations_sql(where, limit, cursor, dollar, row_compare=True)
        rows = await self._pool.fetch(sql, *params)
        return page_of([_ledger_from_row(row) for row in rows], limit)

    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        sql, params = usage_sql(query, dollar, percentiles=True)
        # Totals over no records are one row of zeros in SQL: no row at all here, as per group.
        return [usage_row(tuple(row)) for row in await self._pool.fetch(sql, *params) if row[2]]

    async def append_audit(self, event: AuditEvent) -> None:
        await self._pool.execute(
            "INSERT INTO audit_log (at, actor, action, target, source, via, detail)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            event.at,
            event.actor,
            event.action,
            event.target,
            event.source,
            event.via,
            event.detail,
        )

    async def list_audit(self, limit: int, before_id: int | None = None) -> list[AuditEvent]:
        columns = "id, at, actor, action, target, source, via, detail::text"
        if before_id is None:
            rows = await self._pool.fetch(f"SELECT {columns} FROM audit_log ORDER BY id DESC LIMIT $1", limit)
        else:
            rows = await self._pool.fetch(
                f"SELECT {columns} FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2", before_id, limit
            )
        return [
            AuditEvent(
                id=row[0],
                at=row[1],
                actor=row[2],
                action=row[3],
                target=row[4],
                source=row[5],
                via=row[6],
                detail=row[7],
            )
            for row in rows
        ]


def _ledger_from_row(row: Any) -> LedgerRecord:
    values = dict(row.items())
    values["attempts"] = attempts_from_json(values["attempts"])
    return LedgerRecord(**values)


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
        for name, script in MIGRATIONS:
            if name not in applied:
                await connection.execute(script)
                await connection.execute(
                    "INSERT INTO schema_migrations (name, applied_at) VALUES ($1, $2)", name, time.time()
                )


def _key_from_row(row: Any) -> KeyRecord:
    limit = row["credit_limit_micros"]
    return KeyRecord(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        allowed_models=tuple(row["allowed_models"]),
        credit_limit=None if limit is None else micros_to_usd(limit),
        credit_used=micros_to_usd(row["credit_used_micros"]),
        rpm_limit=row["rpm_limit"],
        tpm_limit=row["tpm_limit"],
        cache_namespace=row["cache_namespace"],
        team_id=row["team_id"],
        budget=budget_from_columns(row["budget_limit_micros"], row["budget_period"], row["budget_reset"]),
    )
