"""Batches usage-ledger records off the hot path.

`submit` appends to an in-memory deque and returns: no I/O, no await, O(1). A background task
writes what is pending every `flush_interval` seconds (in batches of up to `max_batch`), or at once
when a full batch is waiting; what arrives during a write waits for the next interval. `close`
(graceful shutdown) stops the task and writes everything still pending, so a clean stop loses
nothing and a crash loses at most one interval's records (and the write in progress).

A batch never fails as a whole. When the store refuses a batch, its records are written one by one:
    - some are written, some refused: the store works, so the refused ones are poison (a value the
      driver cannot encode, a broken constraint). They go to the dead-letter file
      (server/accounts/ledger_dead_letter.py), logged and counted, and the ledger moves on.
    - none is written: the store is down. The batch stays at the head of the queue and is tried
      again at the next interval. (A lone poison record is retried until newer records join it in a
      batch; then the rule above tells it apart from an outage.)
Stores insert idempotently on (key_id, request_id), where request_id is always the gateway's own
id, so a write that landed but reported an error is not double-counted.

If the store stays down, the queue is bounded by `max_pending`: beyond it new records are dropped
(and counted in `dropped`) rather than the gateway running out of memory. A graceful stop (`close`)
that still cannot reach the store writes what is pending to the dead-letter file: a stop loses
nothing; a kill -9 loses at most one `flush_interval` of records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from server.accounts.ledger_dead_letter import LedgerDeadLetter
from server.accounts.store import LedgerRecord, LedgerSink

__all__ = ["LedgerWriter"]

logger = logging.getLogger("siraya.accounts.ledger")


class LedgerWriter:
    """Buffers LedgerRecords and flushes them to a LedgerSink in batches."""

    def __init__(
        self,
        store: LedgerSink,
        flush_interval: float = 1.0,
        max_batch: int = 500,
        max_pending: int = 100_000,
        dead_letter: LedgerDeadLetter | None = None,
    ) -> None:
        if flush_interval <= 0 or max_batch <= 0 or max_pending < max_batch:
            raise ValueError("flush_interval and max_batch must be positive, max_pending >= max_batch")
        self._store = store
        self._dead_letter = dead_letter
        self._interval = flush_interval
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._pending: deque[LedgerRecord] = deque()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.dropped = 0
        self.written = 0
        self.quarantined = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        """Start the background flusher on the running loop (submit does this on first use)."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ledger-writer")

    def submit(self, record: LedgerRecord) -> None:
        """Queue one record. Never blocks and never does I/O."""
        if self._closed:
            raise RuntimeError("the ledger writer is closed")
        if len(self._pending) >= self._max_pending:
            # Drop the newcomer, not the oldest: the oldest may be the batch being written now.
            if not self.dropped:
                logger.error("ledger queue full (%d records); dropping records", self._max_pending)
            self.dropped += 1
            return
        self._pending.append(record)
        if self._task is None:
            self.start()
        if len(self._pending) >= self._max_batch:
            self._wake.set()

    def pending_record(self, request_id: str, key_id: str) -> LedgerRecord | None:
        """A record not yet written (newest first), so that a replica reads its own writes."""
        for record in reversed(self._pending):
            if record.request_id == request_id and record.key_id == key_id:
                return record
        return None

    async def flush(self) -> None:
        """Write everything pending now, and what arrives while it writes; raises if the store is down
        (records stay queued)."""
        while self._pending:
            await self._flush_due()

    async def _flush_due(self) -> None:
        """Write what was pending when the wait ended; what arrives meanwhile waits for the next one.

        Writing it at once (as `flush` does) kept a loaded gateway's writer busy with batches of a few
        records, each its own transaction, its own thread hop and its own rewrite of the tables'
        last pages: at ~2,000 requests a second, ~700 batches of three.
        """
        async with self._flush_lock:
            # Under the lock the queue only grows (submit) or loses what _write_batch wrote.
            due = len(self._pending)
            while due > 0:
                count = min(due, self._max_batch)
                await self._write_batch(count)
                due -= count

    async def _write_batch(self, count: int) -> None:
        batch = [self._pending[i] for i in range(count)]
        try:
            await self._store.append_ledger(batch)
        except Exception as error:
            if count == 1 or not await self._write_apart(batch):
                raise error
        # Only now drop them: a failed write leaves the batch queued for the next try.
        for _ in range(count):
            self._pending.popleft()
        self.written += count

    async def _write_apart(self, batch: list[LedgerRecord]) -> bool:
        """Write a refused batch record by record; quarantine what fails if anything succeeded.

        False (nothing written, nothing quarantined) means the store is down, not the records.
        """
        refused = await self._write_each(batch)
        if len(refused) == len(batch):
            return False
        if refused:
            # Once more: a store that came back half-way through the first pass is not poison.
            refused = await self._write_each([record for record, _ in refused])
        if refused:
            self._quarantine([record for record, _ in refused], _reason(refused[0][1]))
            self.written -= len(refused)
        return True

    async def _write_each(self, records: list[LedgerRecord]) -> list[tuple[LedgerRecord, Exception]]:
        refused: list[tuple[LedgerRecord, Exception]] = []
        for record in records:
            try:
                await self._store.append_ledger((record,))
            except Exception as error:
                refused.append((record, error))
        return refused

    def _quarantine(self, records: list[LedgerRecord], reason: str) -> None:
        if self._dead_letter is None:
            logger.error(
                "ledger: %d record(s) refused by the store and no dead-letter file (%s)", len(records), reason
            )
            self.dropped += len(records)
            return
        self._dead_letter.write(records, reason)
        self.quarantined += len(records)

    async def close(self) -> None:
        """Stop the flusher and write everything pending (graceful shutdown)."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            # Let a write in progress finish rather than cancel it half-way.
            self._stop.set()
            self._wake.set()
            await self._task
            self._task = None
        try:
            await self.flush()
        except Exception as error:
            if self._dead_letter is None:
                raise
            # The store is down at the stop: keep what is pending on disk rather than lose it.
            logger.error(
                "ledger flush at stop failed (%s); keeping %d records in the dead-letter file",
                _reason(error),
                len(self._pending),
            )
            self._quarantine(list(self._pending), "store_unavailable_at_stop")
            self._pending.clear()

    async def _run(self) -> None:
        failed = False
        while True:
            # After a failure wait the whole interval (a full queue must not turn retries into a
            # spin); either wait ends early when close() is called.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for((self._stop if failed else self._wake).wait(), self._interval)
            if self._closed:
                return  # close() writes what is left
            self._wake.clear()
            try:
                await self._flush_due()
                failed = False
            except Exception:
                failed = True
                logger.exception("ledger flush failed; %d records kept for the next try", len(self._pending))


def _reason(error: Exception) -> str:
    """A short, secret-free label for why the store refused (the exception's type, never its text)."""
    return type(error).__name__
