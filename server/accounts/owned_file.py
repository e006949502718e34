"""What the owned store (owned_sqlite_accounts.py) reads from and writes to its SQLite file: the
journal left by an earlier owner and the open reservations it takes over, batches of settlements,
a level's buckets, and the open reservations it hands back on close. Each runs in the caller's
transaction or on the inner store's thread."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from server.accounts.owned_balances import Holds, Settlement, Window
from server.accounts.sqlite_accounts import SqliteAccountStore
from server.accounts.sqlite_credits import HOLD_LEVEL, MOVE_LEVEL

__all__ = [
    "BUCKETS",
    "JOURNAL_GLOB",
    "apply_batch",
    "apply_settlements",
    "journal_leftovers",
    "load_buckets",
    "persist_open",
    "take_over_open",
]

JOURNAL_GLOB = ".credits-journal."
# An open reservation read back from the file: key_id, request_id, amount, created_at, the key's
# limit and used amount.
OpenRow = tuple[str, str, int, float, int | None, int]

_SETTLED_ROW = (
    "INSERT INTO credit_reservations (key_id, request_id, amount_micros, settled_micros, state, created_at)"
    " VALUES (?, ?, ?, ?, 'settled', ?) ON CONFLICT (key_id, request_id) DO NOTHING"
)
BUCKETS = "SELECT bucket, used_micros, reserved_micros FROM budget_spend WHERE scope = ? AND bucket >= ?"
BUCKETS_BEFORE = BUCKETS + " AND bucket < ?"
_ADD_USED = (
    "UPDATE keys SET credit_used_micros = credit_used_micros + ?,"
    " credit_used = (credit_used_micros + ?) / 1000000.0 WHERE id = ?"
)


def journal_leftovers(db_path: Path) -> tuple[list[Path], list[Settlement]]:
    """The journal segments an earlier owner of `db_path` left behind, oldest first, and their
    settlements (a torn last line is skipped)."""
    leftovers = sorted(
        db_path.parent.glob(f"{db_path.name}{JOURNAL_GLOB}*"),
        key=lambda p: int(p.suffix[1:]) if p.suffix[1:].isdigit() else -1,
    )
    settlements: list[Settlement] = []
    for segment in leftovers:
        for line in segment.read_text(encoding="utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError, TypeError):
                settlements.append(settlement_of(json.loads(line)))
    return leftovers, settlements


def take_over_open(
    db: sqlite3.Connection, settlements: Sequence[Settlement]
) -> tuple[list[OpenRow], dict[tuple[str, str], list[tuple[str, int]]], dict[str, Window]]:
    """Inside the caller's transaction: charge the replayed `settlements`, then take the file's open
    reservations out of it (their rows, the levels each holds, and those levels' windows from the
    oldest bucket held), leaving nothing held in the file."""
    apply_settlements(db, settlements)
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
    windows: dict[str, Window] = {}
    oldest: dict[str, int] = {}
    for held in holds.values():
        for scope, bucket in held:
            oldest[scope] = min(bucket, oldest.get(scope, bucket))
    for scope, since in oldest.items():
        window = windows[scope] = Window(since)
        for bucket, used, reserved in db.execute(BUCKETS, (scope, since)):
            window.buckets[bucket] = [used, reserved]
    db.execute(
        "DELETE FROM credit_holds WHERE EXISTS (SELECT 1 FROM credit_reservations r WHERE"
        " r.key_id = credit_holds.key_id AND r.request_id = credit_holds.request_id"
        " AND r.state = 'open')"
    )
    db.execute("UPDATE budget_spend SET reserved_micros = 0 WHERE reserved_micros != 0")
    db.execute("DELETE FROM credit_reservations WHERE state = 'open'")
    db.execute("UPDATE keys SET credit_reserved_micros = 0 WHERE credit_reserved_micros != 0")
    return rows, holds, windows


def settlement_of(line: list[Any]) -> Settlement:
    """A journal line as a settlement (lines from before levels have five fields)."""
    key_id, request_id, reserved, actual, at = line[:5]
    holds = tuple((str(scope), int(bucket)) for scope, bucket in (line[5] if len(line) > 5 else ()))
    return (str(key_id), str(request_id), int(reserved), int(actual), float(at), holds)


def apply_settlements(
    db: sqlite3.Connection, settlements: Sequence[Settlement]
) -> list[tuple[str, int, Holds]]:
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
    repeats: list[tuple[str, int, Holds]] = []
    for key_id, request_id, reserved, actual, at, holds in settlements:
        if db.execute(_SETTLED_ROW, (key_id, request_id, reserved, actual, at)).rowcount:
            db.execute(_ADD_USED, (actual, actual, key_id))
            db.executemany(MOVE_LEVEL, [(scope, bucket, actual, 0) for scope, bucket in holds])
        else:
            repeats.append((key_id, actual, holds))
    return repeats


def apply_batch(inner: SqliteAccountStore, batch: Sequence[Settlement]) -> list[tuple[str, int, Holds]]:
    with inner._immediate() as db:
        return apply_settlements(db, batch)


def load_buckets(
    inner: SqliteAccountStore, scope: str, since: int, until: int | None
) -> list[tuple[int, int, int]]:
    sql, params = (BUCKETS, (scope, since)) if until is None else (BUCKETS_BEFORE, (scope, since, until))
    with inner._immediate() as db:
        return [(int(b), int(u), int(r)) for b, u, r in db.execute(sql, params)]


def persist_open(inner: SqliteAccountStore, opened: Sequence[tuple[str, str, int, float, Holds]]) -> None:
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
