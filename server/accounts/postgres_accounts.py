"""The shared AccountStore: keys, credits and the usage ledger in Postgres (asyncpg), for replicas.

Credits are exact across any number of replicas because each credit operation is ONE statement
(postgres_credits.py says how); a reservation that must also fit spend levels is one transaction.

Why Postgres, not Redis, holds reservations: the balance must be durable and the ledger must sum
to it. Reserving in Redis and charging in Postgres would need a reconciliation path for every
Redis failover or lost write; a conditional UPDATE is exact and costs one round trip either way.

Schema: the named steps of schema.py, recorded in `schema_migrations(name)` and applied under a
transaction-scoped advisory lock, so replicas starting together migrate once. `schema=` puts all
tables in one Postgres schema (via search_path), e.g. one per tenant or per test.

The store is its parts, one job each: the pool and migrations (postgres_connection.py), keys and
teams (postgres_keys_teams.py), credits (postgres_credits.py) and their leases and sweeps
(postgres_leases.py), the ledger and audit log (postgres_ledger.py), stored responses
(postgres_responses.py).
"""

from __future__ import annotations

from server.accounts.postgres_credits import PostgresCredits
from server.accounts.postgres_keys_teams import PostgresKeysAndTeams
from server.accounts.postgres_ledger import PostgresLedger
from server.accounts.postgres_responses import PostgresResponses

__all__ = ["PostgresAccountStore"]


class PostgresAccountStore(PostgresKeysAndTeams, PostgresCredits, PostgresLedger, PostgresResponses):
    """AccountStore over an asyncpg pool. Open it with `await PostgresAccountStore.open(dsn)`."""
