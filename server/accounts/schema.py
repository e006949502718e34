"""The accounts schema, declared once for both stores: SQLite (sqlite_accounts.py) and Postgres
(postgres_accounts.py).

MIGRATIONS is one ordered list of named steps. A store records each name it applied as a row of
`schema_migrations(name)` and runs only the steps whose names are missing, so a released name never
changes and a new step is one more entry at the end of this list. A step written with `both` is
the same SQL in either dialect, with the column types that differ as placeholders (TYPES); a step
whose SQL differs beyond its types is a `Migration` with each dialect's own statements, or None in
the dialect it is not a step of:
  - 0001: SQLite adds the credit columns to the `keys` table sqlite_store.MIGRATIONS made (and keeps
    the legacy REAL columns in step), while Postgres creates `keys`; the first release named the
    two steps differently, and the names recorded in existing databases stay as they are.
  - 0012: Postgres only; SQLite orders rows made in the same second by their rowid.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from server.accounts.ledger_queries import LEDGER_INDEXES

__all__ = ["MIGRATIONS", "POSTGRES_MIGRATIONS", "SQLITE_MIGRATIONS", "TYPES", "Migration", "both", "steps"]

Dialect = Literal["sqlite", "postgres"]
Steps = tuple[tuple[str, tuple[str, ...]], ...]

# Placeholders of `both` statements: the column types that differ between the dialects.
TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {
        "bigint": "INTEGER",
        "real": "REAL",
        "bool": "INTEGER",
        "bytes": "BLOB",
        "json": "TEXT",
        "id_key": "INTEGER PRIMARY KEY AUTOINCREMENT",
    },
    "postgres": {
        "bigint": "BIGINT",
        "real": "DOUBLE PRECISION",
        "bool": "BOOLEAN",
        "bytes": "BYTEA",
        "json": "JSONB",
        "id_key": "BIGSERIAL PRIMARY KEY",
    },
}


class Migration(NamedTuple):
    """One named step: its statements in each dialect, None where it is not a step."""

    name: str
    sqlite: tuple[str, ...] | None
    postgres: tuple[str, ...] | None


def rendered(dialect: Dialect, *statements: str) -> tuple[str, ...]:
    """`statements` with the dialect's column types in place of their placeholders."""
    return tuple(statement.format(**TYPES[dialect]) for statement in statements)


def both(name: str, *statements: str) -> Migration:
    """A step of both dialects, its types rendered for each."""
    return Migration(name, rendered("sqlite", *statements), rendered("postgres", *statements))


# The tables both dialects' first steps create; the steps differ around them (see above).
_FIRST_TABLES = (
    """CREATE TABLE credit_reservations (
                key_id TEXT NOT NULL,
                request_id TEXT NOT NULL,
                amount_micros {bigint} NOT NULL,
                settled_micros {bigint},
                state TEXT NOT NULL,
                created_at {real} NOT NULL,
                PRIMARY KEY (key_id, request_id)
            )""",
    "CREATE INDEX credit_reservations_open ON credit_reservations (created_at) WHERE state = 'open'",
    """CREATE TABLE usage_ledger (
                request_id TEXT NOT NULL,
                key_id TEXT NOT NULL,
                created_at {real} NOT NULL,
                model_requested TEXT NOT NULL,
                status TEXT NOT NULL,
                http_status INTEGER NOT NULL,
                model_served TEXT,
                provider TEXT,
                error_code TEXT,
                prompt_tokens {bigint} NOT NULL,
                completion_tokens {bigint} NOT NULL,
                cached_tokens {bigint} NOT NULL,
                reasoning_tokens {bigint} NOT NULL,
                cost_micros {bigint} NOT NULL,
                latency_ms {real} NOT NULL,
                ttft_ms {real},
                streamed {bool} NOT NULL,
                PRIMARY KEY (key_id, request_id)
            )""",
)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "accounts/0001_credits_reservations_ledger",
        sqlite=(
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
            *rendered("sqlite", *_FIRST_TABLES),
        ),
        postgres=None,
    ),
    Migration(
        "accounts/0001_keys_credits_ledger",
        sqlite=None,
        postgres=(
            """CREATE TABLE keys (
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
            )""",
            *rendered("postgres", *_FIRST_TABLES),
        ),
    ),
    both(
        "accounts/0002_ledger_cache_write_tokens",
        "ALTER TABLE usage_ledger ADD COLUMN cache_write_tokens {bigint} NOT NULL DEFAULT 0",
    ),
    both(
        "accounts/0003_stored_responses",
        """CREATE TABLE stored_responses (
                id TEXT PRIMARY KEY,
                key_id TEXT NOT NULL,
                created_at {real} NOT NULL,
                status TEXT NOT NULL,
                model TEXT NOT NULL,
                provider TEXT,
                previous_response_id TEXT,
                background {bool} NOT NULL,
                response {bytes} NOT NULL,
                input_items {bytes} NOT NULL,
                upstream_id TEXT,
                reservation_id TEXT,
                lease_until {real}
            )""",
        "CREATE INDEX stored_responses_created ON stored_responses (created_at)",
        "CREATE INDEX stored_responses_active ON stored_responses (lease_until)"
        " WHERE status IN ('queued', 'in_progress')",
    ),
    both(
        "accounts/0004_ledger_cache_saved",
        "ALTER TABLE usage_ledger ADD COLUMN cache_saved_micros {bigint} NOT NULL DEFAULT 0",
    ),
    both(
        "accounts/0005_ledger_attempts_indexes_audit",
        "ALTER TABLE usage_ledger ADD COLUMN attempts {json} NOT NULL DEFAULT '[]'",
        *LEDGER_INDEXES,
        """CREATE TABLE audit_log (
                id {id_key},
                at {real} NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                target TEXT,
                source TEXT,
                via TEXT,
                detail {json} NOT NULL
            )""",
    ),
    # NULL: the key's own id (keys.cache_namespace_of).
    both("accounts/0006_key_cache_namespace", "ALTER TABLE keys ADD COLUMN cache_namespace TEXT"),
    both(
        "accounts/0007_ledger_store_bodies",
        "ALTER TABLE usage_ledger ADD COLUMN prompt_text TEXT",
        "ALTER TABLE usage_ledger ADD COLUMN answer_text TEXT",
    ),
    both(
        "accounts/0008_reservation_leases",
        "ALTER TABLE credit_reservations ADD COLUMN holder_id TEXT",
        "CREATE INDEX credit_reservations_held ON credit_reservations (holder_id) WHERE state = 'open'",
        """CREATE TABLE reservation_holders (
                holder_id TEXT PRIMARY KEY,
                lease_until {real} NOT NULL
            )""",
    ),
    both(
        "accounts/0009_ledger_token_source",
        "ALTER TABLE usage_ledger ADD COLUMN token_source TEXT NOT NULL DEFAULT 'reported'",
    ),
    both(
        "accounts/0010_teams_and_budgets",
        "ALTER TABLE keys ADD COLUMN team_id TEXT",
        "ALTER TABLE keys ADD COLUMN budget_limit_micros {bigint}",
        "ALTER TABLE keys ADD COLUMN budget_period TEXT",
        "ALTER TABLE keys ADD COLUMN budget_reset TEXT",
        "CREATE INDEX keys_team ON keys (team_id) WHERE team_id IS NOT NULL",
        """CREATE TABLE teams (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                created_at {bigint} NOT NULL,
                credit_limit_micros {bigint},
                budget_limit_micros {bigint},
                budget_period TEXT,
                budget_reset TEXT,
                rpm_limit {bigint},
                tpm_limit {bigint}
            )""",
        # Spend per level (budgets.SpendLevel.scope) and bucket: charged, and held in flight.
        """CREATE TABLE budget_spend (
                scope TEXT NOT NULL,
                bucket {bigint} NOT NULL,
                used_micros {bigint} NOT NULL DEFAULT 0,
                reserved_micros {bigint} NOT NULL DEFAULT 0,
                PRIMARY KEY (scope, bucket)
            )""",
        # The levels a reservation holds its amount in; `holds` counts them.
        """CREATE TABLE credit_holds (
                key_id TEXT NOT NULL,
                request_id TEXT NOT NULL,
                scope TEXT NOT NULL,
                bucket {bigint} NOT NULL,
                PRIMARY KEY (key_id, request_id, scope)
            )""",
        "ALTER TABLE credit_reservations ADD COLUMN holds INTEGER NOT NULL DEFAULT 0",
    ),
    both(
        "accounts/0011_ledger_upstream_cost",
        "ALTER TABLE usage_ledger ADD COLUMN upstream_cost_micros {bigint} NOT NULL DEFAULT 0",
        "ALTER TABLE usage_ledger ADD COLUMN upstream_reported_cost_micros {bigint}",
    ),
    Migration(
        # created_at is in seconds: rows made in the same second list in the order they were made.
        "accounts/0012_creation_order",
        sqlite=None,
        postgres=(
            "ALTER TABLE keys ADD COLUMN created_seq BIGSERIAL",
            "ALTER TABLE teams ADD COLUMN created_seq BIGSERIAL",
        ),
    ),
)


def steps(dialect: Dialect) -> Steps:
    """The (name, statements) a store of `dialect` applies, in order."""
    found = ((migration.name, getattr(migration, dialect)) for migration in MIGRATIONS)
    return tuple((name, statements) for name, statements in found if statements is not None)


SQLITE_MIGRATIONS = steps("sqlite")
POSTGRES_MIGRATIONS = steps("postgres")
