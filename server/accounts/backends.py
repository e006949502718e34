"""Open the accounts backends the configuration names: SQLite under data_dir and in-process limits by
default; Postgres when `accounts.database_url` is set; Redis limits when `accounts.redis_url` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from server.accounts.accounting import AccountMetering
from server.accounts.keys import KeyManager
from server.accounts.ledger_writer import LedgerWriter
from server.accounts.memory_limits import MemoryLimitStore
from server.accounts.moderation import Moderator
from server.accounts.store import AccountStore, LimitStore
from server.config import GatewayConfig

__all__ = ["DATABASE_FILE", "Accounts", "open_account_store", "open_accounts"]

DATABASE_FILE = "siraya.db"


@dataclass
class Accounts:
    store: AccountStore
    keys: KeyManager
    metering: AccountMetering


async def open_account_store(config: GatewayConfig) -> AccountStore:
    database_url = config.accounts.database_url
    if database_url:
        from server.accounts.postgres_accounts import PostgresAccountStore

        return await PostgresAccountStore.open(database_url)
    from server.accounts.sqlite_accounts import SqliteAccountStore

    return SqliteAccountStore(Path(config.server.data_dir) / DATABASE_FILE)


def open_limit_store(config: GatewayConfig) -> LimitStore:
    redis_url = config.accounts.redis_url
    if redis_url:
        from server.accounts.redis_limits import RedisLimitStore

        return RedisLimitStore.from_url(redis_url)
    return MemoryLimitStore()


async def open_accounts(config: GatewayConfig) -> Accounts:
    """Every accounts backend, connected and migrated; `metering.close()` closes them all."""
    store = await open_account_store(config)
    limits = open_limit_store(config)
    ledger = LedgerWriter(store, flush_interval=config.accounts.ledger_flush_interval)
    moderator = Moderator(config.accounts.moderation) if config.accounts.moderation else None
    metering = AccountMetering(store, limits, ledger, moderator)
    return Accounts(store, KeyManager(store, cache_ttl=config.accounts.key_cache_ttl), metering)
