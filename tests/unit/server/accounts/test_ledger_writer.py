"""LedgerWriter: batched writes off the hot path, nothing lost on a clean stop."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from server.accounts.ledger_writer import LedgerWriter
from server.accounts.sqlite_accounts import SqliteAccountStore
from server.accounts.store import LedgerRecord
from tests.unit.server.accounts.accounts_backends import ledger_record


class RecordingSink:
    """A LedgerSink that keeps each batch in memory and can be told to fail its next writes. Each
    write takes `seconds` (a thread hop and a commit take time too)."""

    def __init__(self, failures: int = 0, seconds: float = 0.0) -> None:
        self.batches: list[list[LedgerRecord]] = []
        self.failures = failures
        self.seconds = seconds

    async def append_ledger(self, records: Sequence[LedgerRecord]) -> None:
        await asyncio.sleep(self.seconds)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("store down")
        self.batches.append(list(records))

    @property
    def records(self) -> list[LedgerRecord]:
        return [record for batch in self.batches for record in batch]


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for a background flush without betting on the scheduler's timing."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def by_id(record: LedgerRecord) -> int:
    return int(record.request_id.removeprefix("req-"))


def records(count: int, key_id: str = "key_a") -> list[LedgerRecord]:
    return [ledger_record(key_id, f"req-{i}", cost_micros=i) for i in range(count)]


async def test_submit_does_no_io(tmp_path: Path) -> None:
    store = SqliteAccountStore(tmp_path / "gateway.db")
    writer = LedgerWriter(store, flush_interval=0.05)
    for record in records(100):
        writer.submit(record)  # synchronous: no await, so nothing can have been written yet
    with sqlite3.connect(tmp_path / "gateway.db") as db:
        assert db.execute("SELECT COUNT(*) FROM usage_ledger").fetchone()[0] == 0
    assert writer.pending == 100
    await until(lambda: writer.pending == 0)
    assert await store.ledger_sum("key_a") == sum(range(100))
    await writer.close()
    await store.close()


async def test_records_are_batched_by_interval() -> None:
    sink = RecordingSink()
    writer = LedgerWriter(sink, flush_interval=0.5)
    started = asyncio.get_running_loop().time()
    for record in records(30):
        writer.submit(record)
    await asyncio.sleep(0.02)
    assert sink.batches == [] or asyncio.get_running_loop().time() - started >= 0.5  # not before the interval
    await until(lambda: len(sink.records) == 30)
    assert [len(batch) for batch in sink.batches] == [30]
    await writer.close()


async def test_a_full_batch_is_written_without_waiting_for_the_interval() -> None:
    sink = RecordingSink()
    writer = LedgerWriter(sink, flush_interval=60, max_batch=10)
    submitted = records(25)
    for record in submitted:
        writer.submit(record)
    await until(lambda: len(sink.records) == 25)  # long before the 60 s interval
    assert [len(batch) for batch in sink.batches] == [10, 10, 5]
    assert sink.records == submitted
    await writer.close()


async def test_close_writes_everything_pending(tmp_path: Path) -> None:
    store = SqliteAccountStore(tmp_path / "gateway.db")
    writer = LedgerWriter(store, flush_interval=60, max_batch=500)
    for record in records(1234):
        writer.submit(record)
    await writer.close()
    await store.close()

    reopened = SqliteAccountStore(tmp_path / "gateway.db")
    assert await reopened.ledger_sum("key_a") == sum(range(1234))
    assert await reopened.ledger_record("req-1233", "key_a") is not None
    assert writer.written == 1234 and writer.dropped == 0
    with pytest.raises(RuntimeError):
        writer.submit(records(1)[0])
    await reopened.close()


async def test_a_failed_write_is_retried_without_loss_or_duplicates() -> None:
    sink = RecordingSink(failures=2)
    writer = LedgerWriter(sink, flush_interval=0.02)
    submitted = records(7)
    for record in submitted:
        writer.submit(record)
    await until(lambda: len(sink.records) == 7)
    # A refused batch is retried record by record, so the order may change; nothing else may.
    assert sorted(sink.records, key=by_id) == submitted and sink.failures == 0
    await writer.close()
    assert sorted(sink.records, key=by_id) == submitted


async def test_close_on_a_failing_store_raises_and_keeps_the_records() -> None:
    sink = RecordingSink(failures=2)
    writer = LedgerWriter(sink, flush_interval=60, max_batch=1)
    writer.submit(records(1)[0])  # a full batch: the flusher tries at once, fails, and backs off
    await until(lambda: sink.failures == 1)
    with pytest.raises(ConnectionError):
        await writer.close()
    assert writer.pending == 1
    await writer.flush()  # the caller may try again
    assert len(sink.records) == 1


async def test_the_queue_is_bounded() -> None:
    sink = RecordingSink()
    writer = LedgerWriter(sink, flush_interval=60, max_batch=5, max_pending=5)
    submitted = records(7)
    for record in submitted:
        writer.submit(record)
    assert writer.pending == 5 and writer.dropped == 2
    await writer.close()
    assert sink.records == submitted[:5]


async def test_a_steady_stream_is_written_once_per_interval_not_in_trickles() -> None:
    # Under load, records kept arriving while a batch was written, and the writer went straight on
    # to write them: batches of a few records, back to back, each its own transaction.
    sink = RecordingSink(seconds=0.01)
    writer = LedgerWriter(sink, flush_interval=0.2)
    stream = records(600)
    for record in stream:
        writer.submit(record)
        await asyncio.sleep(0.001)
    await until(lambda: writer.pending == 0)
    await writer.close()
    assert sorted(sink.records, key=by_id) == stream
    # About one batch per interval of the stream (~0.6-1 s), not one per 10 ms write.
    assert len(sink.batches) <= 10, [len(batch) for batch in sink.batches]
