"""The in-process rate limiter (the embedded default), and the token-bucket arithmetic it shares
with the Redis Lua script in redis_limits.py.

Why a token bucket: it needs two numbers per key and dimension, admits a whole burst of R at once
and then a steady R per minute, and its state answers OpenAI's headers directly: remaining is the
level, reset is the time until the bucket is full, Retry-After the time until it holds enough.
A fixed window would let 2R through around each window edge; a sliding log costs O(R) memory and
cannot weigh tokens.

Exactness: levels are integers in "unit-microseconds": one unit (a request, a token) is PERIOD_US,
and a bucket of capacity C refills C per elapsed microsecond, so a full bucket is C * PERIOD_US.
No division happens on the admission path, so exactly R requests pass at one instant for every R
(with floats, 7 x 60/7 can exceed 60). Redis Lua numbers are doubles, exact below 2**53, which
bounds a capacity at MAX_CAPACITY (1.5e8 per minute); larger limits are clamped there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server.accounts.store import UNLIMITED, LimitDecision

__all__ = ["MAX_CAPACITY", "PERIOD_US", "MemoryLimitStore", "refill", "wait_us"]

PERIOD_US = 60_000_000
MAX_CAPACITY = 150_000_000


def refill(level: int | None, stamp: int, capacity: int, now_us: int) -> int:
    """A bucket's level at `now_us`: None (never used, or expired) is full; never above full."""
    full = capacity * PERIOD_US
    if level is None:
        return full
    level = min(level, full)  # the capacity may have been lowered
    elapsed = now_us - stamp
    if elapsed <= 0:
        return level
    # Compare before multiplying so that a long idle time cannot overflow a double in Lua.
    if elapsed >= -(-(full - level) // capacity):
        return full
    return level + elapsed * capacity


def wait_us(level: int, needed: int, capacity: int) -> int:
    """Microseconds until a bucket at `level` holds `needed` (0 if it already does)."""
    return 0 if level >= needed else -(-(needed - level) // capacity)


def to_us(now: float) -> int:
    return round(now * 1_000_000)


def clamp_capacity(limit: int | None) -> int | None:
    if limit is None or limit <= 0:
        return None
    return min(limit, MAX_CAPACITY)


@dataclass(slots=True)
class _Bucket:
    level: int
    stamp: int
    capacity: int


@dataclass
class MemoryLimitStore:
    """Token buckets in a dict. The event loop runs each call without an await, so it is atomic."""

    _requests: dict[str, _Bucket] = field(default_factory=dict, init=False)
    _tokens: dict[str, _Bucket] = field(default_factory=dict, init=False)

    async def hit(
        self, key_id: str, rpm: int | None, tpm: int | None, estimated_tokens: int, now: float
    ) -> LimitDecision:
        rpm, tpm = clamp_capacity(rpm), clamp_capacity(tpm)
        if rpm is None and tpm is None:
            return UNLIMITED
        now_us = to_us(now)
        cost = max(0, estimated_tokens)
        request_level = token_level = 0
        request_wait = token_wait = 0
        if rpm is not None:
            request_level = self._level(self._requests, key_id, rpm, now_us)
            request_wait = wait_us(request_level, PERIOD_US, rpm)
        if tpm is not None:
            token_level = self._level(self._tokens, key_id, tpm, now_us)
            token_wait = wait_us(token_level, min(cost, tpm) * PERIOD_US, tpm)
        allowed = request_wait == 0 and token_wait == 0
        if allowed:
            if rpm is not None:
                request_level -= PERIOD_US
            if tpm is not None:
                token_level -= cost * PERIOD_US
        if rpm is not None:
            self._store(self._requests, key_id, request_level, rpm, now_us)
        if tpm is not None:
            self._store(self._tokens, key_id, token_level, tpm, now_us)
        return decision(allowed, rpm, request_level, request_wait, tpm, token_level, token_wait)

    async def adjust_tokens(self, key_id: str, delta_tokens: int, now: float) -> None:
        bucket = self._tokens.get(key_id)
        if bucket is None or delta_tokens == 0:
            return
        now_us = to_us(now)
        level = refill(bucket.level, bucket.stamp, bucket.capacity, now_us)
        level = min(level - delta_tokens * PERIOD_US, bucket.capacity * PERIOD_US)
        self._store(self._tokens, key_id, level, bucket.capacity, now_us)

    async def close(self) -> None:
        self._requests.clear()
        self._tokens.clear()

    @staticmethod
    def _level(buckets: dict[str, _Bucket], key_id: str, capacity: int, now_us: int) -> int:
        bucket = buckets.get(key_id)
        if bucket is None:
            return capacity * PERIOD_US
        return refill(bucket.level, bucket.stamp, capacity, now_us)

    @staticmethod
    def _store(buckets: dict[str, _Bucket], key_id: str, level: int, capacity: int, now_us: int) -> None:
        bucket = buckets.get(key_id)
        if bucket is None:
            buckets[key_id] = _Bucket(level, now_us, capacity)
        else:
            # A caller whose clock is behind must not move the stamp back and be refilled twice.
            bucket.level, bucket.stamp, bucket.capacity = level, max(bucket.stamp, now_us), capacity


def decision(
    allowed: bool,
    rpm: int | None,
    request_level: int,
    request_wait_us: int,
    tpm: int | None,
    token_level: int,
    token_wait_us: int,
) -> LimitDecision:
    """Headers' numbers from the buckets' levels after the check (shared with the Redis store)."""
    retry = None if allowed else max(request_wait_us, token_wait_us) / 1_000_000
    return LimitDecision(
        allowed=allowed,
        limit_requests=rpm,
        remaining_requests=None if rpm is None else max(0, request_level // PERIOD_US),
        reset_requests_s=0.0 if rpm is None else wait_us(request_level, rpm * PERIOD_US, rpm) / 1_000_000,
        limit_tokens=tpm,
        remaining_tokens=None if tpm is None else max(0, token_level // PERIOD_US),
        reset_tokens_s=0.0 if tpm is None else wait_us(token_level, tpm * PERIOD_US, tpm) / 1_000_000,
        retry_after_s=retry,
    )
