"""The single-worker SQLite store: credits in memory, settlements journaled then batched.

The AccountStore contract itself runs against it in test_account_store_contract.py ("sqlite-owned").
Here: only one process owns a file's credits, concurrent requests never overspend, and a process
killed between a settlement and its batch loses nothing and charges nothing twice.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

from server.accounts.budgets import Spend, SpendLevel
from server.accounts.owned_sqlite_accounts import OwnedSqliteAccountStore, open_owned_or_shared
from server.accounts.sqlite_accounts import CreditsOwnedElsewhere, SqliteAccountStore
from server.accounts.store import Balance
from tests.paths import ROOT
from tests.unit.server.accounts.accounts_backends import key_record


def _owned(path: Path, flush_interval: float = 0.05) -> OwnedSqliteAccountStore:
    store = OwnedSqliteAccountStore.try_open(path, flush_interval=flush_interval)
    assert store is not None
    return store


async def _add_key(store: object, credit_limit: float | None) -> str:
    record, secret_hash = key_record(credit_limit=credit_limit)
    await store.insert_key(record, secret_hash)  # type: ignore[attr-defined]
    return record.id


def _file_used(path: Path, key_id: str) -> tuple[int, int]:
    with sqlite3.connect(path) as db:
        row = db.execute(
            "SELECT credit_used_micros, credit_reserved_micros FROM keys WHERE id = ?", (key_id,)
        ).fetchone()
    return int(row[0]), int(row[1])


async def test_only_one_process_owns_a_files_credits(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    owner = _owned(path)
    try:
        assert OwnedSqliteAccountStore.try_open(path) is None
        fallback = open_owned_or_shared(path, owned=False)
        assert isinstance(fallback, SqliteAccountStore)
        key_id = await _add_key(owner, 1.0)  # keys are not credits: both may write them
        assert (await fallback.key_by_id(key_id)) is not None
        with pytest.raises(CreditsOwnedElsewhere):
            await fallback.reserve(key_id, "r1", 10)
        await fallback.close()
    finally:
        await owner.close()
    # A transactional writer that moved money keeps an owner out until it closes.
    shared = SqliteAccountStore(path)
    assert await shared.reserve(key_id, "r2", 10)
    assert OwnedSqliteAccountStore.try_open(path) is None
    await shared.close()
    owner = _owned(path)
    assert await owner.balance(key_id) == Balance(1_000_000, 0, 10)
    await owner.close()


async def test_a_reload_in_the_owning_process_shares_the_owner(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    first = open_owned_or_shared(path, owned=True)
    assert isinstance(first, OwnedSqliteAccountStore)
    key_id = await _add_key(first, 0.01)
    assert await first.reserve(key_id, "old-gateway", 6_000)
    second = open_owned_or_shared(path, owned=True)  # the reloaded gateway, built before the old closes
    assert second is first
    assert not await second.reserve(key_id, "new-gateway", 6_000)  # one balance, not two
    await first.close()  # the old gateway retires: the new one keeps owning
    assert await second.settle(key_id, "old-gateway", 5_000)
    assert await second.balance(key_id) == Balance(10_000, 5_000, 0)
    await second.close()
    assert _file_used(path, key_id) == (5_000, 0)
    third = open_owned_or_shared(path, owned=True)
    assert isinstance(third, OwnedSqliteAccountStore) and third is not first
    await third.close()


async def test_concurrent_requests_never_overspend_and_the_file_agrees(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    store = _owned(path, flush_interval=0.01)
    key_id = await _add_key(store, 0.05)  # 50,000 micros
    assert await store.balance(key_id) is not None  # loaded: the requests below never suspend on it
    rng = random.Random(7)
    admitted = 0

    def within_limit() -> bool:
        position = store._accounts[key_id]
        return position.used + position.reserved <= 50_000

    async def request(index: int) -> int:
        nonlocal admitted
        await asyncio.sleep(rng.random() / 50)  # arrivals spread over 20 ms
        if not store.reserve_nowait(key_id, f"res-{index}", 1_000):
            return 0
        admitted += 1
        assert within_limit()
        await asyncio.sleep(rng.random() / 100)  # the upstream call
        actual = rng.randrange(0, 1_001)
        if actual == 0:
            assert store.release_nowait(key_id, f"res-{index}")
            return 0
        assert store.settle_nowait(key_id, f"res-{index}", actual)
        assert within_limit()
        return actual

    charged = await asyncio.gather(*(request(i) for i in range(2_000)))
    balance = await store.balance(key_id)
    assert balance is not None
    assert balance.reserved == 0
    assert balance.used == sum(charged) <= 50_000
    assert 50 <= admitted < 2_000  # at least the first 50 worst cases fit; never all of them
    await store.close()
    assert _file_used(path, key_id) == (sum(charged), 0)


_CRASH = """
import asyncio, os, sys
from server.accounts.owned_sqlite_accounts import OwnedSqliteAccountStore

async def main() -> None:
    store = OwnedSqliteAccountStore.try_open(sys.argv[1], flush_interval=3600)
    key_id = sys.argv[2]
    assert await store.balance(key_id) is not None
    for index in range(25):
        assert store.reserve_nowait(key_id, f"crash-{index}", 5_000)
        assert store.settle_nowait(key_id, f"crash-{index}", 1_000 + index)
    assert store.reserve_nowait(key_id, "held", 5_000)  # open when the process dies
    print("settled", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_process_killed_before_its_batch_commits_loses_no_settled_cent(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    setup = SqliteAccountStore(path)
    key_id = await _add_key(setup, 1.0)
    await setup.close()
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_CRASH), str(path), key_id],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "settled"
        # Between settle and the batch: nothing is in the file yet, everything is in the journal.
        assert _file_used(path, key_id) == (0, 0)
        journals = list(tmp_path.glob("g.db.credits-journal.*"))
        assert journals and journals[0].read_text().count("\n") == 25
        saved = tmp_path / "journal.copy"
        shutil.copy(journals[0], saved)
    finally:
        child.kill()
        child.wait(10)
    expected = sum(1_000 + index for index in range(25))

    store = _owned(path)
    # Replayed; the reservation that died with the process is released.
    assert await store.balance(key_id) == Balance(1_000_000, expected, 0)
    assert _file_used(path, key_id) == (expected, 0)
    assert [j.stat().st_size for j in tmp_path.glob("g.db.credits-journal.*")] == [0]  # a fresh one
    assert not await store.settle(key_id, "crash-3", 1_003)  # settled in the dead process
    await store.close()

    # A crash after the batch committed but before its journal was unlinked: replaying it again
    # charges nothing twice.
    shutil.copy(saved, tmp_path / "g.db.credits-journal.0")
    store = _owned(path)
    assert await store.balance(key_id) == Balance(1_000_000, expected, 0)
    await store.close()
    assert _file_used(path, key_id) == (expected, 0)


async def test_a_clean_close_keeps_open_reservations_and_commits_every_settlement(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    store = _owned(path, flush_interval=3600)
    key_id = await _add_key(store, 0.01)
    assert await store.reserve(key_id, "a", 4_000)
    assert await store.reserve(key_id, "b", 4_000)
    assert not await store.reserve(key_id, "c", 4_000)
    assert await store.settle(key_id, "a", 3_000)
    assert _file_used(path, key_id) == (0, 0)
    await store.close()
    assert _file_used(path, key_id) == (3_000, 4_000)
    assert not list(tmp_path.glob("g.db.credits-journal.*"))

    store = _owned(path)
    assert await store.balance(key_id) == Balance(10_000, 3_000, 4_000)
    assert _file_used(path, key_id) == (3_000, 0)  # held in memory again while owned
    assert not await store.reserve(key_id, "d", 4_000)
    assert await store.settle(key_id, "b", 4_500)
    record = await store.key_by_id(key_id)
    assert record is not None and record.credit_used == pytest.approx(0.0075)
    await store.close()
    assert _file_used(path, key_id) == (7_500, 0)


async def test_a_replayed_journal_charges_each_level_once(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    setup = SqliteAccountStore(path)
    key_id = await _add_key(setup, None)
    await setup.close()
    team = SpendLevel("team:t", 0, 0, 10_000)
    journal = tmp_path / "g.db.credits-journal.0"
    lines = (
        orjson.dumps([key_id, "with-levels", 500, 400, 1.0, [["team:t", 0]]])
        + b"\n"
        # A line from before levels: five fields.
        + orjson.dumps([key_id, "older", 0, 100, 1.0])
        + b"\n"
    )
    for _ in range(2):  # the second time, its batch had committed: nothing is charged twice
        journal.write_bytes(lines)
        store = _owned(path)
        assert await store.balance(key_id) == Balance(None, 500, 0)
        assert await store.spent([team]) == [Spend(400, 0)]
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT used_micros, reserved_micros FROM budget_spend").fetchall() == [(400, 0)]


async def test_a_clean_close_keeps_the_levels_of_open_reservations(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    team = SpendLevel("team:t", 0, 0, 10_000)
    store = _owned(path, flush_interval=3600)
    key_id = await _add_key(store, None)
    assert await store.reserve_up_to(key_id, "open", 6_000, 6_000, [team]) == 6_000
    await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT used_micros, reserved_micros FROM budget_spend").fetchall() == [(0, 6_000)]
    store = _owned(path)
    assert await store.reserve_up_to(key_id, "more", 1, 10_000, [team]) == 4_000
    assert await store.release(key_id, "open")
    assert await store.spent([team]) == [Spend(0, 4_000)]
    with sqlite3.connect(path) as db:  # held in memory again while owned
        assert db.execute("SELECT used_micros, reserved_micros FROM budget_spend").fetchall() == [(0, 0)]
    await store.close()
