"""Real backends for the accounts tests: throwaway Postgres databases, Redis key prefixes, and the
worker processes of the no-overspend tests (spawned, so they live in an importable module).

Postgres and Redis are the local servers (override with SIRAYA_TEST_POSTGRES_DSN and
SIRAYA_TEST_REDIS_URL). A test skips, with the reason, only when its server is unreachable.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import time
import traceback
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from redis.asyncio import Redis

from server.accounts.budgets import Budget
from server.accounts.keys import KeyRecord
from server.accounts.ledger_writer import LedgerWriter
from server.accounts.store import AccountStore, LedgerRecord

POSTGRES_DSN = os.environ.get("SIRAYA_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("SIRAYA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

T = TypeVar("T")


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even when an event loop is already running."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


@functools.cache
def postgres_unavailable() -> str | None:
    """Why Postgres cannot be used, or None when it can."""

    async def probe() -> None:
        connection = await asyncpg.connect(POSTGRES_DSN, timeout=3)
        await connection.close()

    try:
        run_sync(probe)
    except Exception as error:
        return f"Postgres unreachable at {POSTGRES_DSN}: {error!r}"
    return None


@functools.cache
def redis_unavailable() -> str | None:
    """Why Redis cannot be used, or None when it can."""

    async def probe() -> None:
        client = Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        try:
            await client.ping()
        finally:
            await client.aclose()

    try:
        run_sync(probe)
    except Exception as error:
        return f"Redis unreachable at {REDIS_URL}: {error!r}"
    return None


@contextmanager
def temporary_database() -> Iterator[str]:
    """A freshly created, uniquely named Postgres database (its DSN), dropped afterwards."""
    name = "siraya_test_" + secrets.token_hex(6)

    async def run(sql: str) -> None:
        connection = await asyncpg.connect(POSTGRES_DSN, timeout=5)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    run_sync(lambda: run(f'CREATE DATABASE "{name}"'))
    parts = urlsplit(POSTGRES_DSN)
    try:
        yield urlunsplit(parts._replace(path="/" + name))
    finally:
        run_sync(lambda: run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def delete_prefix(prefix: str) -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def key_record(
    key_id: str | None = None,
    *,
    credit_limit: float | None = None,
    created_at: int = 1_700_000_000,
    name: str = "app",
    allowed_models: tuple[str, ...] = (),
    rpm_limit: int | None = None,
    tpm_limit: int | None = None,
    cache_namespace: str | None = None,
    team_id: str | None = None,
    budget: Budget | None = None,
) -> tuple[KeyRecord, str]:
    """A key record and the hash of its (made-up) secret."""
    key_id = key_id or "key_" + secrets.token_hex(8)
    record = KeyRecord(
        id=key_id,
        name=name,
        prefix="sk-sr-" + key_id[-4:],
        created_at=created_at,
        allowed_models=allowed_models,
        credit_limit=credit_limit,
        rpm_limit=rpm_limit,
        tpm_limit=tpm_limit,
        cache_namespace=cache_namespace,
        team_id=team_id,
        budget=budget,
    )
    return record, "hash-" + key_id


def ledger_record(key_id: str, request_id: str, *, cost_micros: int = 0, ok: bool = True) -> LedgerRecord:
    return LedgerRecord(
        request_id=request_id,
        key_id=key_id,
        created_at=time.time(),
        model_requested="gpt-test",
        status="success" if ok else "error",
        http_status=200 if ok else 402,
        model_served="gpt-test-2025" if ok else None,
        provider="openai" if ok else None,
        error_code=None if ok else "insufficient_credits",
        prompt_tokens=10 if ok else 0,
        completion_tokens=5 if ok else 0,
        cost_micros=cost_micros,
        latency_ms=1.5,
    )


async def open_account_store(kind: str, target: str) -> AccountStore:
    """`target` is a SQLite path, or a Postgres DSN."""
    if kind == "sqlite":
        from server.accounts.sqlite_accounts import SqliteAccountStore

        return SqliteAccountStore(target)
    from server.accounts.postgres_accounts import PostgresAccountStore

    return await PostgresAccountStore.open(target, min_size=1, max_size=8)


def overspend_worker(
    kind: str, target: str, key_id: str, attempts: int, price: int, worker: int, barrier: Any, results: Any
) -> None:
    """One gateway process: `attempts` concurrent reserve-then-settle requests against one key."""
    try:
        results.put(("ok", asyncio.run(_overspend(kind, target, key_id, attempts, price, barrier, worker))))
    except BaseException:
        results.put(("error", traceback.format_exc()))


async def _overspend(
    kind: str, target: str, key_id: str, attempts: int, price: int, barrier: Any, worker: int
) -> int:
    store = await open_account_store(kind, target)
    writer = LedgerWriter(store, flush_interval=0.05, max_batch=50)
    barrier.wait(timeout=60)  # every process fires at once

    async def one(index: int) -> bool:
        request_id = f"req-{worker}-{index}"
        if not await store.reserve(key_id, request_id, price):
            writer.submit(ledger_record(key_id, request_id, ok=False))
            return False
        await store.settle(key_id, request_id, price)
        writer.submit(ledger_record(key_id, request_id, cost_micros=price))
        return True

    try:
        outcomes = await asyncio.gather(*(one(index) for index in range(attempts)))
    finally:
        await writer.close()
        await store.close()
    return sum(outcomes)


def rate_limit_worker(
    url: str, prefix: str, key_id: str, rpm: int, attempts: int, now: float, barrier: Any, results: Any
) -> None:
    """One gateway process hitting one key's rpm `attempts` times at once (at a fixed `now`)."""
    try:
        results.put(("ok", asyncio.run(_rate_limit(url, prefix, key_id, rpm, attempts, now, barrier))))
    except BaseException:
        results.put(("error", traceback.format_exc()))


async def _rate_limit(
    url: str, prefix: str, key_id: str, rpm: int, attempts: int, now: float, barrier: Any
) -> int:
    from server.accounts.redis_limits import RedisLimitStore

    limits = RedisLimitStore.from_url(url, prefix)
    await limits.hit("warm-up-" + key_id, 1, None, 0, now)  # connect and load the script first
    barrier.wait(timeout=60)
    try:
        decisions = await asyncio.gather(*(limits.hit(key_id, rpm, None, 0, now) for _ in range(attempts)))
    finally:
        await limits.close()
    return sum(decision.allowed for decision in decisions)
