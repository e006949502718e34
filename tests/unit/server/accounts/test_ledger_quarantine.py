"""A poisoned ledger record is quarantined, never the batch: on SQLite and on Postgres.

Issue #20 defect 1: one request id that was not valid UTF-8 made every later ledger flush fail, for
every key, and a stop lost what was still queued. These tests put such a record among good ones.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import orjson
import pytest

from server.accounts.ledger_dead_letter import LedgerDeadLetter
from server.accounts.ledger_writer import LedgerWriter
from server.accounts.postgres_accounts import PostgresAccountStore
from server.accounts.sqlite_accounts import SqliteAccountStore
from server.accounts.store import AccountStore, LedgerRecord
from tests.unit.server.accounts.accounts_backends import (
    ledger_record,
)

# A lone surrogate: what a header byte that is not UTF-8 decodes to. No driver can encode it.
POISON = "bad\udcff"


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AccountStore]:
    opened: AccountStore
    if request.param == "sqlite":
        opened = SqliteAccountStore(tmp_path / "gateway.db")
    else:
        dsn = request.getfixturevalue("postgres_dsn")
        opened = await PostgresAccountStore.open(dsn, schema="t_" + secrets.token_hex(6), max_size=4)
    yield opened
    await opened.close()


def mixed_batch(key_id: str, good: int, poison_at: int) -> list[LedgerRecord]:
    records = [ledger_record(key_id, f"req-{i}", cost_micros=1) for i in range(good)]
    records.insert(poison_at, ledger_record(key_id, POISON, cost_micros=1_000))
    return records


def dead_letters(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


async def test_one_poisoned_record_among_a_thousand(store: AccountStore, tmp_path: Path) -> None:
    dead = LedgerDeadLetter(tmp_path / "dead.jsonl")
    writer = LedgerWriter(store, flush_interval=60, max_batch=500, dead_letter=dead)
    for record in mixed_batch("key_a", good=999, poison_at=321):
        writer.submit(record)
    await writer.flush()
    assert writer.pending == 0
    assert await store.ledger_sum("key_a") == 999
    assert writer.written == 999 and writer.quarantined == 1
    quarantined = dead_letters(tmp_path / "dead.jsonl")
    assert [row["request_id"] for row in quarantined] == ["bad\\udcff"]
    assert quarantined[0]["cost_micros"] == 1_000 and quarantined[0]["key_id"] == "key_a"
    # The ledger goes on for everyone afterwards.
    writer.submit(ledger_record("key_b", "req-after", cost_micros=7))
    await writer.close()
    assert await store.ledger_sum("key_b") == 7


async def test_a_stop_loses_nothing_even_with_poison_queued(store: AccountStore, tmp_path: Path) -> None:
    dead = LedgerDeadLetter(tmp_path / "dead.jsonl")
    writer = LedgerWriter(store, flush_interval=60, max_batch=100, dead_letter=dead)
    for record in mixed_batch("key_c", good=250, poison_at=0):
        writer.submit(record)
    await writer.close()  # what a SIGTERM does
    assert await store.ledger_sum("key_c") == 250
    assert len(dead_letters(tmp_path / "dead.jsonl")) == 1


class DownStore:
    """A store that refuses every write, as a database that is unreachable does."""

    def __init__(self) -> None:
        self.attempts = 0

    async def append_ledger(self, records: Sequence[LedgerRecord]) -> None:
        self.attempts += 1
        raise ConnectionRefusedError("store down")


async def test_an_outage_is_not_mistaken_for_poison(tmp_path: Path) -> None:
    dead = LedgerDeadLetter(tmp_path / "dead.jsonl")
    writer = LedgerWriter(DownStore(), flush_interval=60, dead_letter=dead)
    for i in range(10):
        writer.submit(ledger_record("key_d", f"req-{i}"))
    with pytest.raises(ConnectionRefusedError):
        await writer.flush()
    assert writer.pending == 10 and writer.quarantined == 0  # kept for the next try
    assert not (tmp_path / "dead.jsonl").exists()


async def test_a_stop_with_the_store_down_keeps_the_records_on_disk(tmp_path: Path) -> None:
    dead = LedgerDeadLetter(tmp_path / "dead.jsonl")
    writer = LedgerWriter(DownStore(), flush_interval=60, dead_letter=dead)
    for i in range(10):
        writer.submit(ledger_record("key_e", f"req-{i}", cost_micros=i))
    await writer.close()
    rows = dead_letters(tmp_path / "dead.jsonl")
    assert [row["request_id"] for row in rows] == [f"req-{i}" for i in range(10)]
    assert {row["quarantine_reason"] for row in rows} == {"store_unavailable_at_stop"}
