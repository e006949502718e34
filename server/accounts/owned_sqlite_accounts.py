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
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from server.accounts.budgets import ROLLING_BUCKETS, Spend, SpendLevel
from server.accounts.keys import KeyChanges, KeyRecord
from server.accounts.ledger_queries import Cursor, GenerationFilter, GenerationPage, UsageQuery, UsageRow
from server.accounts.money import micros_to_usd
from server.accounts.sqlite_accounts import HOLD_LEVEL, MOVE_LEVEL, SqliteAccountStore, credit_lock_path
from server.accounts.store import (
    NOT_LOADED,
    AccountStore,
    AuditEvent,
    Balance,
    LedgerRecord,
    NotLoaded,
    StoredResponse,
    check_reserve_bounds,
)
from server.accounts.teams import TeamChanges, TeamDeletion, TeamRecord

__all__ = ["OwnedSqliteAccountStore", "open_owned_or_shared"]

logger = logging.getLogger("siraya.accounts")

# Settled or released ids remembered so a repeat is a no-op without asking the file; metering's
# ids are fresh per request, so this only backs the contract's promise for callers that repeat.
FINISHED_WINDOW = 16_384
JOURNAL_GLOB = ".credits-journal."

_Holds = tuple[tuple[str, int], ...]  # (scope, bucket) of each level a reservation holds
# key_id, request_id, reserved, actual, at, levels held
_Settlement = tuple[str, str, int, int, float, _Holds]
# A window with more buckets than this drops those before the oldest one asked for.
_WINDOW_PRUNE = 4 * ROLLING_BUCKETS


class _Account:
    __slots__ = ("limit", "reserved", "used")

    def __init__(self, limit: int | None, used: int, reserved: int = 0) -> None:
        self.limit = limit
        self.used = used
        self.reserved = reserved


class _Window:
    """One level's spend in memory: [used, reserved] by bucket, every bucket from `since` on."""

    __slots__ = ("buckets", "since")

    def __init__(self, since: int) -> None:
        self.since = since
        self.buckets: dict[int, list[int]] = {}

    def spend(self, since: int, bucket: int) -> tuple[int, int]:
        if since == bucket:  # a calendar period or a lifetime: one bucket
            found = self.buckets.get(bucket)
            return (0, 0) if found is None else (found[0], found[1])
        if len(self.buckets) > _WINDOW_PRUNE and since > self.since:
            # Buckets before the window (nothing held in them) are in the file; windows only move on.
            for old in [b for b, (_, held) in self.buckets.items() if b < since and not held]:
                del self.buckets[old]
            self.since = since
        used = held = 0
        for b, (charged, reserved) in self.buckets.items():
            if since <= b <= bucket:
                used += charged
                held += reserved
        return used, held


class OwnedSqliteAccountStore:
    """AccountStore over a SQLite file this process owns: credits in memory, charges journaled."""

    def __init__(self, inner: SqliteAccountStore, lock_fd: int, flush_interval: float) -> None:
        self._inner = inner
        self._lock_fd = lock_fd
        self._interval = flush_interval
        self._accounts: dict[str, _Account] = {}
        self._open: dict[tuple[str, str], tuple[int, float, _Holds]] = {}  # amount, created_at, levels
        self._windows: dict[str, _Window] = {}
        # An OrderedDict, not a dict: dropping a dict's oldest key again and again makes next(iter())
        # walk the deleted slots in front of it (py-spy: 2.4% of a request once the window filled).
        self._finished: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._pending: list[_Settlement] = []
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
        leftovers = sorted(
            self._inner.path.parent.glob(f"{self._inner.path.name}{JOURNAL_GLOB}*"),
            key=lambda p: int(p.suffix[1:]) if p.suffix[1:].isdigit() else -1,
        )
        settlements: list[_Settlement] = []
        for segment in leftovers:
            for line in segment.read_text(encoding="utf-8", errors="replace").splitlines():
                with contextlib.suppress(ValueError, TypeError):
                    settlements.append(_settlement(json.loads(line)))
        with self._inner._immediate() as db:
            _apply(db, settlements)
            rows = db.execute(
                "SELECT r.key_id, r.request_id, r.amount_micros, r.created_at, k.credit_limit_micros,"
                " k.credit_used_micros FROM credit_reservations r JOIN keys k ON k.id = r.key_id"
                " WHERE r.state = 'open'"
            ).fetchall()
            holds: dict[tuple[str, str], list[tuple[str, int]]] = {}
            for key_id, request_id, scope, bucket in db.execute(
                "SELECT h.key_id, h.request_id, h.scope, h.bucket FROM credit_holds h"
                " JOIN credit_reservations r ON r.key_id = h.key_id AND r.request_id = h.request_id"
                " WHERE r.state = 'open' ORDER BY h.scope"
            ):
                holds.setdefault((key_id, request_id), []).append((scope, bucket))
            oldest: dict[str, int] = {}
            for held in holds.values():
                for scope, bucket in held:
                    oldest[scope] = min(bucket, oldest.get(scope, bucket))
            for scope, since in oldest.items():
                window = self._windows[scope] = _Window(since)
                for bucket, used, reserved in db.execute(_BUCKETS, (scope, since)):
                    window.buckets[bucket] = [used, reserved]
            db.execute(
                "DELETE FROM credit_holds WHERE EXISTS (SELECT 1 FROM credit_reservations r WHERE"
                " r.key_id = credit_holds.key_id AND r.request_id = credit_holds.request_id"
                " AND r.state = 'open')"
            )
            db.execute("UPDATE budget_spend SET reserved_micros = 0 WHERE reserved_micros != 0")
            db.execute("DELETE FROM credit_reservations WHERE state = 'open'")
            db.execute("UPDATE keys SET credit_reserved_micros = 0 WHERE credit_reserved_micros != 0")
        for key_id, request_id, amount, created_at, limit, used in rows:
            account = self._accounts.setdefault(key_id, _Account(limit, used))
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

    def _move(self, holds: _Holds, charged: int, held: int) -> None:
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

    async def _account(self, key_id: str) -> _Account | None:
        account = self._accounts.get(key_id)
        if account is not None:
            return account
        balance = await self._inner.balance(key_id)
        if balance is None:
            return None
        # Another coroutine may have loaded it meanwhile: the first load wins.
        return self._accounts.setdefault(key_id, _Account(balance.limit, balance.used))

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

    async def _window(self, scope: str, since: int) -> _Window:
        """A level's window in memory from `since` on, read from the file the first time."""
        window = self._windows.get(scope)
        if window is not None and window.since <= since:
            return window
        until = None if window is None else window.since
        rows = await self._inner.run(_load_buckets, self._inner, scope, since, until)
        window = self._windows.get(scope)  # another coroutine may have loaded it meanwhile
        if window is None:
            window = self._windows[scope] = _Window(since)
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
                repeats = await self._inner.run(_apply_batch, self._inner, batch)
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
        await self._inner.run(_persist_open, self._inner, opened)
        await self._inner.close()
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)

    # keys and the ledger: the file, with balances overlaid from memory

    def _overlay(self, record: KeyRecord) -> KeyRecord:
        account = self._accounts.get(record.id)
        if account is None:
            return record
        return dataclasses.replace(
            record,
            credit_limit=None if account.limit is None else micros_to_usd(account.limit),
            credit_used=micros_to_usd(account.used),
        )

    async def insert_key(self, record: KeyRecord, secret_hash: str) -> None:
        await self._inner.insert_key(record, secret_hash)

    async def key_by_hash(self, secret_hash: str) -> tuple[KeyRecord, str] | None:
        found = await self._inner.key_by_hash(secret_hash)
        return None if found is None else (self._overlay(found[0]), found[1])

    async def key_by_id(self, key_id: str) -> KeyRecord | None:
        found = await self._inner.key_by_id(key_id)
        return None if found is None else self._overlay(found)

    async def list_keys(self) -> list[KeyRecord]:
        return [self._overlay(record) for record in await self._inner.list_keys()]

    async def revoke_key(self, key_id: str, at: int) -> KeyRecord | None:
        found = await self._inner.revoke_key(key_id, at)
        return None if found is None else self._overlay(found)

    async def replace_secret(self, key_id: str, prefix: str, secret_hash: str) -> KeyRecord | None:
        found = await self._inner.replace_secret(key_id, prefix, secret_hash)
        return None if found is None else self._overlay(found)

    async def update_key(self, key_id: str, changes: KeyChanges) -> KeyRecord | None:
        found = await self._inner.update_key(key_id, changes)
        return None if found is None else self._overlay(found)

    # teams: settings only; what a team spent is a level, in memory like the keys' balances

    async def insert_team(self, record: TeamRecord) -> None:
        await self._inner.insert_team(record)

    async def team_by_id(self, team_id: str) -> TeamRecord | None:
        return await self._inner.team_by_id(team_id)

    async def list_teams(self) -> list[TeamRecord]:
        return await self._inner.list_teams()

    async def update_team(self, team_id: str, changes: TeamChanges) -> TeamRecord | None:
        return await self._inner.update_team(team_id, changes)

    async def delete_team(self, team_id: str) -> TeamDeletion:
        return await self._inner.delete_team(team_id)

    async def append_ledger(self, records: Sequence[LedgerRecord]) -> None:
        await self._inner.append_ledger(records)

    async def ledger_record(self, request_id: str, key_id: str) -> LedgerRecord | None:
        return await self._inner.ledger_record(request_id, key_id)

    async def ledger_sum(self, key_id: str) -> int:
        return await self._inner.ledger_sum(key_id)

    # stored responses: no money moves, so they go straight to the file

    async def insert_response(self, record: StoredResponse) -> None:
        await self._inner.insert_response(record)

    async def get_response(self, response_id: str, key_id: str) -> StoredResponse | None:
        return await self._inner.get_response(response_id, key_id)

    async def delete_response(self, response_id: str, key_id: str) -> bool:
        return await self._inner.delete_response(response_id, key_id)

    async def update_response(self, record: StoredResponse, expected: Sequence[str]) -> bool:
        return await self._inner.update_response(record, expected)

    async def renew_response_leases(self, response_ids: Sequence[str], until: float) -> None:
        await self._inner.renew_response_leases(response_ids, until)

    async def expired_responses(self, now: float) -> list[StoredResponse]:
        return await self._inner.expired_responses(now)

    async def delete_responses_before(self, before: float) -> int:
        return await self._inner.delete_responses_before(before)

    async def list_generations(
        self, where: GenerationFilter, limit: int, cursor: Cursor | None = None
    ) -> GenerationPage:
        return await self._inner.list_generations(where, limit, cursor)

    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        return await self._inner.usage(query)

    async def append_audit(self, event: AuditEvent) -> None:
        await self._inner.append_audit(event)

    async def list_audit(self, limit: int, before_id: int | None = None) -> list[AuditEvent]:
        return await self._inner.list_audit(limit, before_id)


_SETTLED_ROW = (
    "INSERT INTO credit_reservations (key_id, request_id, amount_micros, settled_micros, state, created_at)"
    " VALUES (?, ?, ?, ?, 'settled', ?) ON CONFLICT (key_id, request_id) DO NOTHING"
)
_BUCKETS = "SELECT bucket, used_micros, reserved_micros FROM budget_spend WHERE scope = ? AND bucket >= ?"
_BUCKETS_BEFORE = _BUCKETS + " AND bucket < ?"
_ADD_USED = (
    "UPDATE keys SET credit_used_micros = credit_used_micros + ?,"
    " credit_used = (credit_used_micros + ?) / 1000000.0 WHERE id = ?"
)


def _settlement(line: list[Any]) -> _Settlement:
    """A journal line as a settlement (lines from before levels have five fields)."""
    key_id, request_id, reserved, actual, at = line[:5]
    holds = tuple((str(scope), int(bucket)) for scope, bucket in (line[5] if len(line) > 5 else ()))
    return (str(key_id), str(request_id), int(reserved), int(actual), float(at), holds)


def _apply(db: sqlite3.Connection, settlements: Sequence[_Settlement]) -> list[tuple[str, int, _Holds]]:
    """Charge each settlement once (inside the caller's transaction), at its key and its levels;
    the ones already in the file.

    The common batch is all new rows: one executemany and one UPDATE per key and per level bucket.
    Only a batch holding a repeat (a journal replayed after its batch committed) is redone row by row.
    """
    db.execute("SAVEPOINT settle_batch")
    before = db.total_changes
    db.executemany(_SETTLED_ROW, [settlement[:5] for settlement in settlements])
    if db.total_changes - before == len(settlements):
        charged: dict[str, int] = {}
        levels: dict[tuple[str, int], int] = {}
        for key_id, _, _, actual, _, holds in settlements:
            charged[key_id] = charged.get(key_id, 0) + actual
            for hold in holds:
                levels[hold] = levels.get(hold, 0) + actual
        db.executemany(_ADD_USED, [(actual, actual, key_id) for key_id, actual in charged.items()])
        db.executemany(
            MOVE_LEVEL, [(scope, bucket, actual, 0) for (scope, bucket), actual in sorted(levels.items())]
        )
        db.execute("RELEASE settle_batch")
        return []
    db.execute("ROLLBACK TO settle_batch")
    db.execute("RELEASE settle_batch")
    repeats: list[tuple[str, int, _Holds]] = []
    for key_id, request_id, reserved, actual, at, holds in settlements:
        if db.execute(_SETTLED_ROW, (key_id, request_id, reserved, actual, at)).rowcount:
            db.execute(_ADD_USED, (actual, actual, key_id))
            db.executemany(MOVE_LEVEL, [(scope, bucket, actual, 0) for scope, bucket in holds])
        else:
            repeats.append((key_id, actual, holds))
    return repeats


def _apply_batch(inner: SqliteAccountStore, batch: Sequence[_Settlement]) -> list[tuple[str, int, _Holds]]:
    with inner._immediate() as db:
        return _apply(db, batch)


def _load_buckets(
    inner: SqliteAccountStore, scope: str, since: int, until: int | None
) -> list[tuple[int, int, int]]:
    sql, params = (_BUCKETS, (scope, since)) if until is None else (_BUCKETS_BEFORE, (scope, since, until))
    with inner._immediate() as db:
        return [(int(b), int(u), int(r)) for b, u, r in db.execute(sql, params)]


def _persist_open(inner: SqliteAccountStore, opened: Sequence[tuple[str, str, int, float, _Holds]]) -> None:
    with inner._immediate() as db:
        for key_id, request_id, amount, created, holds in opened:
            db.execute(
                "INSERT OR IGNORE INTO credit_reservations (key_id, request_id, amount_micros, state,"
                " created_at, holds) VALUES (?, ?, ?, 'open', ?, ?)",
                (key_id, request_id, amount, created, len(holds)),
            )
            db.execute(
                "UPDATE keys SET credit_reserved_micros = credit_reserved_micros + ? WHERE id = ?",
                (amount, key_id),
            )
            for scope, bucket in holds:
                db.execute(HOLD_LEVEL, (scope, bucket, amount))
                db.execute(
                    "INSERT OR IGNORE INTO credit_holds (key_id, request_id, scope, bucket)"
                    " VALUES (?, ?, ?, ?)",
                    (key_id, request_id, scope, bucket),
                )


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
