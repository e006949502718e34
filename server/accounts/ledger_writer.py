"""Batches usage-ledger records off the hot path.

`submit` appends to an in-memory deque and returns: no I/O, no await, O(1). A background task
writes batches of up to `max_batch` every `flush_interval` seconds, or at once when a full batch
is waiting. `close` (graceful shutdown) stops the task and writes everything still pending, so a
clean stop loses nothing and a crash loses at most one interval's records.

A failed write keeps its batch at the head of the queue and is retried at the next interval;
stores insert idempotently on (key_id, request_id), so a write that landed but reported an error
is not double-counted. If the store stays down, the queue is bounded by `max_pending`: beyond it
new records are dropped (and counted in `dropped`) rather than the gateway running out of memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

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
    ) -> None:
        if flush_interval <= 0 or max_batch <= 0 or max_pending < max_batch:
            raise ValueError("flush_interval and max_batch must be positive, max_pending >= max_batch")
        self._store = store
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
        """Write everything pending now; raises if the store fails (records stay queued)."""
        async with self._flush_lock:
            while self._pending:
                count = min(len(self._pending), self._max_batch)
                batch = [self._pending[i] for i in range(count)]
                await self._store.append_ledger(batch)
                # Only now drop them: a failed write leaves the batch queued for the next try.
                for _ in range(count):
                    self._pending.popleft()
                self.written += count

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
        await self.flush()

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
                await self.flush()
                failed = False
            except Exception:
                failed = True
                logger.exception("ledger flush failed; %d records kept for the next try", len(self._pending))
