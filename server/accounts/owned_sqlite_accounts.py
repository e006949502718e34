"""Credits held in memory by the one process that owns a SQLite file's balances.

Why: through SqliteAccountStore every request pays two thread hops and two BEGIN IMMEDIATE
transactions (reserve, then settle); the bench measured that as the biggest single cost on the
REST path. A single-worker gateway is the only writer of its file's balances, so it can keep them
in memory, check and update them synchronously on the event loop, and write settled charges to
SQLite in batches.

Ownership. A process owns the balances while it holds an exclusive flock on `<db>.credits-lock`.
Only a single-worker gateway asks for it (`serve` with workers = 1). Every SqliteAccountStore takes
the same lock shared before its first credit write (`serve --workers N`, tests, tools), so an owner
and a transactional writer never run together: an owner candidate that finds the lock shared falls
back to SqliteAccountStore (see `open_owned_or_shared`), and a SqliteAccountStore that finds it
owned refuses to move money. The kernel drops the lock when its process dies.

Invariants.
- No overspend: `limit - used - reserved` is checked and updated in one synchronous step on the
  event loop, so concurrent requests are serialised without a lock and without a thread hop.
- Reservations are transient: while owned they live only in memory, never in the file. A crash
  drops them, which releases them (their requests died with the process), as the stale sweep does
  today. A clean close writes the open ones back as `open` rows, and taking ownership reads them
  back into memory, so a graceful restart keeps them (the contract's reopening test).
- A settlement is acknowledged (settle returns, the response carries its cost) once it is in the
  journal: one os.write of one line to `<db>.credits-journal.<n>`, before its batch commits. A
  line that write() accepted is in the OS page cache and survives a killed process; like SQLite's
  synchronous=NORMAL in WAL mode (which the file uses) it does not survive power loss.
- Batches commit every `flush_interval` in one transaction. Each settlement inserts its
  (key_id, request_id) row in credit_reservations and adds its charge to keys.credit_used_micros
  only if that row was new, so replaying a journal line whose batch already committed changes
  nothing: a crash never loses a settled cent and never charges one twice.
- The journal rotates at each batch: new lines go to a fresh segment, and a segment is unlinked only
  after every line in it has committed. Taking ownership replays every segment left behind, then
  unlinks them.
The usage ledger is separate (LedgerWriter): a crash may lose its last interval of records, as
documented there, but never a charge.

Its parts: the balances and windows in memory (owned_balances.py), what it reads from and writes
to the file (owned_file.py), and the records that move no money, straight to the file
(owned_records.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import orjson

from server.accounts.budgets import Spend, SpendLevel
from server.accounts.owned_balances import Account, Holds, Settlement, Window
from server.accounts.owned_file import (
    JOURNAL_GLOB,
    apply_batch,
    journal_leftovers,
    load_buckets,
    persist_open,
    take_over_open,
)
from server.accounts.owned_records import OwnedFileRecords
from server.accounts.sqlite_accounts import SqliteAccountStore, credit_lock_path
from server.accounts.store import NOT_LOADED, AccountStore, Balance, NotLoaded, check_reserve_bounds

__all__ = ["OwnedSqliteAccountStore", "open_owned_or_shared"]

logger = logging.getLogger("siraya.accounts")

# Settled or released ids remembered so a repeat is a no-op without asking the file; metering's
# ids are fresh per request, so this only backs the contract's promise for callers that repeat.
FINISHED_WINDOW = 16_384


class OwnedSqliteAccountStore(OwnedFileRecords):
    """AccountStore over a SQLite file this process owns: credits in memory, charges journaled."""

    def __init__(self, inner: SqliteAccountStore, lock_fd: int, flush_interval: float) -> None:
        self._inner = inner
        self._lock_fd = lock_fd
        self._interval = flush_interval
        self._accounts: dict[str, Account] = {}
        self._open: dict[tuple[str, str], tuple[int, float, Holds]] = {}  # amount, created_at, levels
        self._windows: dict[str, Window] = {}
        # An OrderedDict, not a dict: dropping a dict's oldest key again and again makes next(iter())
        # walk the deleted slots in front of it (py-spy: 2.4% of a request once the window filled).
        self._finished: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._pending: list[Settlement] = []
        self._journal_seq = 0
        self._journal_fd = -1
        self._journal_dirty = False
        self._full_segments: list[Path] = []  # rotated out, waiting for their batch to commit
        self._flush_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._users = 1
        self._registry_key: Path | None = None

    @classmethod
    def try_open(cls, path: str | Path, *, flush_interval: float = 0.05) -> OwnedSqliteAccountStore | None:
        """Take ownership of the file's balances, or None if another process holds the lock."""
        inner = SqliteAccountStore(path, shared_credit_lock=False)
        fd = os.open(credit_lock_path(inner.path), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            inner.close_now()
            return None
        store = cls(inner, fd, flush_interval)
        store._take_over()
        return store

    # ownership

    def _journal_path(self, seq: int) -> Path:
        return self._inner.path.with_name(f"{self._inner.path.name}{JOURNAL_GLOB}{seq}")

    def _take_over(self) -> None:
        leftovers, settlements = journal_leftovers(self._inner.path)
        with self._inner._immediate() as db:
            rows, holds, windows = take_over_open(db, settlements)
        self._windows.update(windows)
        for key_id, request_id, amount, created_at, limit, used in rows:
            account = self._accounts.setdefault(key_id, Account(limit, used))
            account.reserved += amount
            self._open[(key_id, request_id)] = (
                amount,
                created_at,
                tuple(holds.get((key_id, request_id), ())),
            )
        for segment in leftovers:
            segment.unlink(missing_ok=True)
        if settlements:
            logger.warning("replayed %d journaled credit settlements", len(settlements))
        self._open_journal()

    def _open_journal(self) -> None:
        path = self._journal_path(self._journal_seq)
        self._journal_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._journal_dirty = False

    def _rotate_journal(self) -> None:
        os.close(self._journal_fd)
        self._full_segments.append(self._journal_path(self._journal_seq))
        self._journal_seq += 1
        self._open_journal()

    # credits, synchronous: no await, no I/O except one journal write per settlement

    def reserve_nowait(self, key_id: str, request_id: str, amount_micros: int) -> bool | None:
        """`reserve` without suspending; None when the key is not loaded yet (use `reserve`).

        The caller's request id must be fresh or come from this process (metering's ids are):
        an id finished in an earlier run is not looked up in the file.
        """
        if amount_micros < 0:
            raise ValueError("a reservation cannot be negative")
        account = self._accounts.get(key_id)
        if account is None:
            return None
        ident = (key_id, request_id)
        if ident in self._open:
            return True
        if ident in self._finished:
            return False
        if account.limit is not None and account.used + account.reserved + amount_micros > account.limit:
            return False
        account.reserved += amount_micros
        self._open[ident] = (amount_micros, time.time(), ())
        return True

    def reserve_up_to_nowait(
        self,
        key_id: str,
        request_id: str,
        minimum_micros: int,
        maximum_micros: int,
        levels: Sequence[SpendLevel] = (),
    ) -> int | None | NotLoaded:
        """`reserve_up_to` without suspending; NOT_LOADED when the key or a level's window is not
        loaded yet.

        Same fresh-id rule as `reserve_nowait`.
        """
        if not 0 <= minimum_micros <= maximum_micros:
            check_reserve_bounds(minimum_micros, maximum_micros)  # says which
        account = self._accounts.get(key_id)
        if account is None:
            return NOT_LOADED
        windows = []
        for level in levels:
            window = self._windows.get(level.scope)
            if window is None or window.since > level.since:
                return NOT_LOADED
            windows.append(window)
        ident = (key_id, request_id)
        held = self._open.get(ident)
        if held is not None:
            return held[0]
        if ident in self._finished:
            return None
        amount = maximum_micros
        if account.limit is not None:
            amount = min(amount, account.limit - account.used - account.reserved)
        for level, window in zip(levels, windows, strict=True):
            if level.limit is not None and amount >= minimum_micros:
                used, reserved = window.spend(level.since, level.bucket)
                amount = min(amount, level.limit - used - reserved)
        if amount < minimum_micros:
            return None
        account.reserved += amount
        for level, window in zip(levels, windows, strict=True):
            found = window.buckets.get(level.bucket)
            if found is None:
                window.buckets[level.bucket] = [0, amount]
            else:
                found[1] += amount
        holds = tuple((level.scope, level.bucket) for level in levels)
        self._open[ident] = (amount, time.time(), holds)
        return amount

    def settle_nowait(self, key_id: str, request_id: str, actual_micros: int) -> bool | None:
        """`settle` without suspending; None when the key is not loaded yet (use `settle`).

        Returns once the charge is journaled (durable against a crash). Same fresh-id rule as
        `reserve_nowait`.
        """
        if actual_micros < 0:
            raise ValueError("a charge cannot be negative")
        account = self._accounts.get(key_id)
        if account is None:
            return None
        ident = (key_id, request_id)
        if ident in self._finished:
            return False
        if self._closed:
            raise RuntimeError("the account store is closed")
        held = self._open.pop(ident, None)
        reserved, holds = (0, ()) if held is None else (held[0], held[2])
        now = time.time()
        line: list[object] = [key_id, request_id, reserved, actual_micros, now]
        if holds:
            line.append(holds)
        os.write(self._journal_fd, orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
        self._journal_dirty = True
        account.reserved -= reserved
        account.used += actual_micros
        self._move(holds, actual_micros, -reserved)
        self._pending.append((key_id, request_id, reserved, actual_micros, now, holds))
        self._finish(ident)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="credit-flush")
        return True

    def release_nowait(self, key_id: str, request_id: str) -> bool:
        held = self._open.pop((key_id, request_id), None)
        if held is None:
            return False
        account = self._accounts.get(key_id)
        if account is not None:
            account.reserved -= held[0]
        self._move(held[2], 0, -held[0])
        self._finish((key_id, request_id))
        return True

    def _move(self, holds: Holds, charged: int, held: int) -> None:
        """Charge and change the held amount of each level's bucket in memory."""
        for scope, bucket in holds:
            window = self._windows.get(scope)
            found = None if window is None else window.buckets.get(bucket)
            if found is not None:
                found[0] += charged
                found[1] += held

    def _finish(self, ident: tuple[str, str]) -> None:
        self._finished[ident] = None
        if len(self._finished) > FINISHED_WINDOW:
            self._finished.popitem(last=False)

    # credits, the AccountStore contract

    async def _account(self, key_id: str) -> Account | None:
        account = self._accounts.get(key_id)
        if account is not None:
            return account
        balance = await self._inner.balance(key_id)
        if balance is None:
            return None
        # Another coroutine may have loaded it meanwhile: the first load wins.
        return self._accounts.setdefault(key_id, Account(balance.limit, balance.used))

    async def _finished_in_file(self, key_id: str, request_id: str) -> bool:
        ident = (key_id, request_id)
        if ident in self._open or ident in self._finished:
            return False
        return await self._inner.reservation_state(key_id, request_id) is not None

    async def reserve(self, key_id: str, request_id: str, amount_micros: int) -> bool:
        if amount_micros < 0:
            raise ValueError("a reservation cannot be negative")
        if await self._account(key_id) is None or await self._finished_in_file(key_id, request_id):
            return False
        return bool(self.reserve_nowait(key_id, request_id, amount_micros))

    async def reserve_up_to(
        self,
        key_id: str,
        request_id: str,
        minimum_micros: int,
        maximum_micros: int,
        levels: Sequence[SpendLevel] = (),
    ) -> int | None:
        check_reserve_bounds(minimum_micros, maximum_micros)
        if await self._account(key_id) is None:
            return None
        for level in levels:
            await self._window(level.scope, level.since)
        ident = (key_id, request_id)
        if ident not in self._open and await self._finished_in_file(key_id, request_id):
            return None
        held = self.reserve_up_to_nowait(key_id, request_id, minimum_micros, maximum_micros, levels)
        return None if held is NOT_LOADED else held  # type: ignore[return-value]

    async def _window(self, scope: str, since: int) -> Window:
        """A level's window in memory from `since` on, read from the file the first time."""
        window = self._windows.get(scope)
        if window is not None and window.since <= since:
            return window
        until = None if window is None else window.since
        rows = await self._inner.run(load_buckets, self._inner, scope, since, until)
        window = self._windows.get(scope)  # another coroutine may have loaded it meanwhile
        if window is None:
            window = self._windows[scope] = Window(since)
        for bucket, used, reserved in rows:
            window.buckets.setdefault(bucket, [used, reserved])
        window.since = min(window.since, since)
        return window

    async def spent(self, levels: Sequence[SpendLevel]) -> list[Spend]:
        found = []
        for level in levels:
            window = await self._window(level.scope, level.since)
            found.append(Spend(*window.spend(level.since, level.bucket)))
        return found

    async def settle(self, key_id: str, request_id: str, actual_micros: int) -> bool:
        if actual_micros < 0:
            raise ValueError("a charge cannot be negative")
        if await self._account(key_id) is None or await self._finished_in_file(key_id, request_id):
            return False
        return bool(self.settle_nowait(key_id, request_id, actual_micros))

    async def release(self, key_id: str, request_id: str) -> bool:
        return self.release_nowait(key_id, request_id)

    async def release_stale(self, before: float) -> int:
        stale = [ident for ident, (_, created, _) in self._open.items() if created < before]
        for key_id, request_id in stale:
            self.release_nowait(key_id, request_id)
        return len(stale)

    # Leases: nothing to vouch for. This process is the only one moving the file's credit, and its
    # reservations live in its memory: they die with it, which releases them.

    async def renew_lease(self, until: float) -> None:
        return None

    async def end_lease(self) -> None:
        return None

    async def reclaim_expired(self, now: float) -> int:
        return 0

    async def balance(self, key_id: str) -> Balance | None:
        account = await self._account(key_id)
        return None if account is None else Balance(account.limit, account.used, account.reserved)

    async def set_credit_limit(self, key_id: str, limit_micros: int | None) -> Balance | None:
        if await self._inner.set_credit_limit(key_id, limit_micros) is None:
            return None
        account = await self._account(key_id)
        if account is None:
            return None
        account.limit = limit_micros
        return Balance(account.limit, account.used, account.reserved)

    # batches

    async def _run(self) -> None:
        while not self._closed:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception:
                logger.exception(
                    "credit flush failed; %d settlements kept for the next try", len(self._pending)
                )

    async def flush(self) -> None:
        """Commit every journaled settlement to the file, then drop the journal segments."""
        async with self._flush_lock:
            if not self._pending and not self._full_segments and not self._journal_dirty:
                return
            batch, self._pending = self._pending, []
            if self._journal_dirty:
                self._rotate_journal()
            segments = list(self._full_segments)
            try:
                repeats = await self._inner.run(apply_batch, self._inner, batch)
            except BaseException:
                self._pending[:0] = batch  # the segments stay on disk and in the list
                raise
            for key_id, actual, holds in repeats:
                # Already settled in the file (an id repeated after leaving the window): no charge.
                account = self._accounts.get(key_id)
                if account is not None:
                    account.used -= actual
                self._move(holds, -actual, 0)
            for segment in segments:
                segment.unlink(missing_ok=True)
            del self._full_segments[: len(segments)]

    async def close(self) -> None:
        if self._closed:
            return
        self._users -= 1
        if self._users > 0:
            return  # another gateway of this process still uses it
        self._closed = True
        if self._registry_key is not None and _OWNERS.get(self._registry_key) is self:
            del _OWNERS[self._registry_key]
        if self._task is not None:
            async with self._flush_lock:  # never cancel a batch half-way
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        os.close(self._journal_fd)
        self._journal_path(self._journal_seq).unlink(missing_ok=True)
        opened = [(k, r, amount, created, holds) for (k, r), (amount, created, holds) in self._open.items()]
        await self._inner.run(persist_open, self._inner, opened)
        await self._inner.close()
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)


def open_owned_or_shared(path: str | Path, *, owned: bool, flush_interval: float = 0.05) -> AccountStore:
    """The owned store when `owned` and no other process uses the file's credits, else the shared one.

    A gateway built in a process that already owns the file (a SIGHUP reload builds the new one
    while the old one finishes its requests) shares the owner: each `close` drops one user.
    """
    if owned and str(path) != ":memory:":
        key = Path(path).resolve()
        store = _OWNERS.get(key)
        if store is not None and not store._closed:
            store._users += 1
            return store
        store = OwnedSqliteAccountStore.try_open(path, flush_interval=flush_interval)
        if store is not None:
            _OWNERS[key] = store
            store._registry_key = key
            return store
        logger.info("another process writes this SQLite file's credits; using per-request transactions")
    return SqliteAccountStore(path)


_OWNERS: dict[Path, OwnedSqliteAccountStore] = {}
