"""Open the accounts backends the configuration names: SQLite under data_dir and in-process limits by
default; Postgres when `accounts.database_url` is set; Redis limits when `accounts.redis_url` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from server.accounts.accounting import AccountMetering
from server.accounts.budgets import Budget, BudgetPeriod, BudgetReset
from server.accounts.keys import KeyManager
from server.accounts.ledger_dead_letter import DEAD_LETTER_FILE, LedgerDeadLetter
from server.accounts.ledger_writer import LedgerWriter
from server.accounts.memory_limits import MemoryLimitStore
from server.accounts.moderation import Moderator
from server.accounts.money import usd_to_micros
from server.accounts.store import AccountStore, LimitStore
from server.accounts.teams import TeamManager
from server.config import GatewayConfig

__all__ = ["DATABASE_FILE", "Accounts", "global_budget", "open_account_store", "open_accounts"]

DATABASE_FILE = "siraya.db"


@dataclass
class Accounts:
    store: AccountStore
    keys: KeyManager
    metering: AccountMetering


async def open_account_store(config: GatewayConfig, *, own_credits: bool = False) -> AccountStore:
    """`own_credits`: this is the only gateway process, so with SQLite it may keep the balances in
    memory (owned_sqlite_accounts.py) if no other process uses the file's credits. Its settled
    charges reach the file every `ledger_flush_interval` (a journal makes them durable before)."""
    database_url = config.accounts.database_url
    if database_url:
        from server.accounts.postgres_accounts import PostgresAccountStore

        return await PostgresAccountStore.open(database_url)
    from server.accounts.owned_sqlite_accounts import open_owned_or_shared

    return open_owned_or_shared(
        Path(config.server.data_dir) / DATABASE_FILE,
        owned=own_credits,
        flush_interval=config.accounts.ledger_flush_interval,
    )


def open_limit_store(config: GatewayConfig) -> LimitStore:
    redis_url = config.accounts.redis_url
    if redis_url:
        from server.accounts.redis_limits import RedisLimitStore

        return RedisLimitStore.from_url(redis_url)
    return MemoryLimitStore()


async def open_accounts(config: GatewayConfig) -> Accounts:
    """Every accounts backend, connected and migrated; `metering.close()` closes them all."""
    store = await open_account_store(config, own_credits=config.server.workers == 1)
    limits = open_limit_store(config)
    ledger = LedgerWriter(
        store,
        flush_interval=config.accounts.ledger_flush_interval,
        dead_letter=LedgerDeadLetter(Path(config.server.data_dir) / DEAD_LETTER_FILE),
    )
    moderator = Moderator(config.accounts.moderation) if config.accounts.moderation else None
    metering = AccountMetering(
        store,
        limits,
        ledger,
        moderator,
        store_bodies=config.observability.store_bodies,
        lease_seconds=config.accounts.reservation_lease,
        global_budget=global_budget(config),
        teams=TeamManager(store, cache_ttl=config.accounts.key_cache_ttl),
    )
    return Accounts(store, KeyManager(store, cache_ttl=config.accounts.key_cache_ttl), metering)


def global_budget(config: GatewayConfig) -> Budget | None:
    """`accounts.global_budget` in micro-dollars; None when it is not set."""
    found = config.accounts.global_budget
    if found is None:
        return None
    return Budget(usd_to_micros(found.limit), BudgetPeriod(found.period), BudgetReset(found.reset))
