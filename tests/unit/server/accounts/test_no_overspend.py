"""No overspend across gateway processes: several OS processes (spawned) share one store.

A key holds credits for exactly N requests at a fixed price; 20*N requests race for them from
PROCESSES processes at once. Exactly N succeed, the rest are refused (the 402 path), and the
balance, the settled total and the ledger agree to the micro-dollar. The same for a shared Redis
rpm bucket: exactly R requests pass across all processes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from server.accounts.postgres_accounts import PostgresAccountStore
from server.accounts.sqlite_accounts import SqliteAccountStore
from server.accounts.store import AccountStore, Balance
from tests.unit.server.accounts.accounts_backends import (
    REDIS_URL,
    delete_prefix,
    key_record,
    overspend_worker,
    postgres_unavailable,
    rate_limit_worker,
    redis_unavailable,
    temporary_database,
)

PROCESSES = 4
N = 10
PRICE = 1_234_567  # micros: an odd amount, so any rounding would show


def run_processes(target: Any, args_for: Any) -> list[int]:
    """Start PROCESSES spawned workers released by one barrier; their results, or the first error."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    workers = [
        context.Process(target=target, args=(*args_for(i), barrier, results)) for i in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    outcomes: list[tuple[str, Any]] = []
    deadline = time.monotonic() + 90
    try:
        while len(outcomes) < len(workers):
            try:
                outcomes.append(results.get(timeout=0.2))
            except queue.Empty:
                # A worker that died before reporting (a crash at import) must fail the test now.
                dead = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
                assert not dead and time.monotonic() < deadline, f"workers failed: exit codes {dead}"
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    errors = [detail for status, detail in outcomes if status != "ok"]
    assert not errors, errors[0]
    return [int(detail) for _, detail in outcomes]


async def check_exact(store: AccountStore, key_id: str, successes: list[int]) -> None:
    assert sum(successes) == N
    assert await store.balance(key_id) == Balance(limit=N * PRICE, used=N * PRICE, reserved=0)
    assert await store.ledger_sum(key_id) == N * PRICE
    # One ledger record per request, success or refusal.
    for worker in range(PROCESSES):
        for index in range(20 * N // PROCESSES):
            assert await store.ledger_record(f"req-{worker}-{index}", key_id) is not None


async def make_key(store: AccountStore) -> str:
    record, secret_hash = key_record(credit_limit=N * PRICE / 1_000_000)
    await store.insert_key(record, secret_hash)
    assert (await store.balance(record.id)) == Balance(N * PRICE, 0, 0)
    return record.id


async def test_postgres_holds_across_processes() -> None:
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    with temporary_database() as dsn:
        store = await PostgresAccountStore.open(dsn)
        try:
            key_id = await make_key(store)
            attempts = 20 * N // PROCESSES
            successes = await asyncio.to_thread(
                run_processes, overspend_worker, lambda i: ("postgres", dsn, key_id, attempts, PRICE, i)
            )
            await check_exact(store, key_id, successes)
        finally:
            await store.close()


async def test_sqlite_file_holds_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    store = SqliteAccountStore(path)  # migrates before the workers open it
    try:
        key_id = await make_key(store)
        attempts = 20 * N // PROCESSES
        successes = await asyncio.to_thread(
            run_processes, overspend_worker, lambda i: ("sqlite", str(path), key_id, attempts, PRICE, i)
        )
        await check_exact(store, key_id, successes)
    finally:
        await store.close()


async def test_redis_rpm_holds_across_processes() -> None:
    reason = redis_unavailable()
    if reason:
        pytest.skip(reason)
    prefix = f"siraya-test:{secrets.token_hex(6)}:"
    rpm = 10
    now = time.time()  # one instant for every process: no refill can blur the count
    try:
        allowed = await asyncio.to_thread(
            run_processes, rate_limit_worker, lambda i: (REDIS_URL, prefix, "key", rpm, 30, now)
        )
    finally:
        await delete_prefix(prefix)
    assert sum(allowed) == rpm
