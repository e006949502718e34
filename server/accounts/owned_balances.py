"""The owned store's credits in memory (owned_sqlite_accounts.py): a key's balance, a spend level's
window of buckets, and the shapes of a hold and of a journaled settlement."""

from __future__ import annotations

from server.accounts.budgets import ROLLING_BUCKETS

__all__ = ["Account", "Holds", "Settlement", "Window"]

Holds = tuple[tuple[str, int], ...]  # (scope, bucket) of each level a reservation holds
# key_id, request_id, reserved, actual, at, levels held
Settlement = tuple[str, str, int, int, float, Holds]
# A window with more buckets than this drops those before the oldest one asked for.
_WINDOW_PRUNE = 4 * ROLLING_BUCKETS


class Account:
    __slots__ = ("limit", "reserved", "used")

    def __init__(self, limit: int | None, used: int, reserved: int = 0) -> None:
        self.limit = limit
        self.used = used
        self.reserved = reserved


class Window:
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
