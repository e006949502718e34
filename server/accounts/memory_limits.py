"""The in-process rate limiter (the embedded default), and the token-bucket arithmetic it shares
with the Redis Lua script in redis_limits.py.

Why a token bucket: it needs two numbers per key and dimension, admits a whole burst of R at once
and then a steady R per minute, and its state answers OpenAI's headers directly: remaining is the
level, reset is the time until the bucket is full, Retry-After the time until it holds enough.
A fixed window would let 2R through around each window edge; a sliding log costs O(R) memory and
cannot weigh tokens.

A key in a team with rpm/tpm limits has the team's buckets checked in the same step as its own: the
request passes only if both have room, and then takes from both, so the team's limits cap the sum
over its keys. The decision reports, per dimension, whichever bucket has less left.

Exactness: levels are integers in "unit-microseconds": one unit (a request, a token) is PERIOD_US,
and a bucket of capacity C refills C per elapsed microsecond, so a full bucket is C * PERIOD_US.
No division happens on the admission path, so exactly R requests pass at one instant for every R
(with floats, 7 x 60/7 can exceed 60). Redis Lua numbers are doubles, exact below 2**53, which
bounds a capacity at MAX_CAPACITY (1.5e8 per minute); larger limits are clamped there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server.accounts.store import UNLIMITED, LimitDecision, TeamRates

__all__ = ["MAX_CAPACITY", "PERIOD_US", "MemoryLimitStore", "refill", "team_bucket", "tighter", "wait_us"]

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


def team_bucket(team_id: str) -> str:
    """A team's buckets, beside its keys' (a key id never starts so)."""
    return "team:" + team_id


@dataclass(slots=True)
class _Check:
    """One owner's buckets while a hit is decided: levels and the waits for this request."""

    name: str
    rpm: int | None
    tpm: int | None
    requests: int = 0
    requests_wait: int = 0
    tokens: int = 0
    tokens_wait: int = 0

    @property
    def clear(self) -> bool:
        return self.requests_wait == 0 and self.tokens_wait == 0


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
        self,
        key_id: str,
        rpm: int | None,
        tpm: int | None,
        estimated_tokens: int,
        now: float,
        team: TeamRates | None = None,
    ) -> LimitDecision:
        rpm, tpm = clamp_capacity(rpm), clamp_capacity(tpm)
        team_rpm = team_tpm = None
        if team is not None:
            team_rpm, team_tpm = clamp_capacity(team.rpm), clamp_capacity(team.tpm)
        if rpm is None and tpm is None and team_rpm is None and team_tpm is None:
            return UNLIMITED
        now_us = to_us(now)
        cost = max(0, estimated_tokens)
        mine = self._check(key_id, rpm, tpm, cost, now_us)
        theirs = None if team is None else self._check(team_bucket(team.id), team_rpm, team_tpm, cost, now_us)
        allowed = mine.clear and (theirs is None or theirs.clear)
        for found in (mine, theirs):
            if found is not None:
                self._settle(found, allowed, cost, now_us)
        decided = decision(
            allowed, rpm, mine.requests, mine.requests_wait, tpm, mine.tokens, mine.tokens_wait
        )
        if theirs is None:
            return decided
        return tighter(
            decided,
            decision(
                allowed,
                team_rpm,
                theirs.requests,
                theirs.requests_wait,
                team_tpm,
                theirs.tokens,
                theirs.tokens_wait,
            ),
        )

    def _check(self, name: str, rpm: int | None, tpm: int | None, cost: int, now_us: int) -> _Check:
        found = _Check(name, rpm, tpm)
        if rpm is not None:
            found.requests = self._level(self._requests, name, rpm, now_us)
            found.requests_wait = wait_us(found.requests, PERIOD_US, rpm)
        if tpm is not None:
            found.tokens = self._level(self._tokens, name, tpm, now_us)
            found.tokens_wait = wait_us(found.tokens, min(cost, tpm) * PERIOD_US, tpm)
        return found

    def _settle(self, found: _Check, allowed: bool, cost: int, now_us: int) -> None:
        if found.rpm is not None:
            if allowed:
                found.requests -= PERIOD_US
            self._store(self._requests, found.name, found.requests, found.rpm, now_us)
        if found.tpm is not None:
            if allowed:
                found.tokens -= cost * PERIOD_US
            self._store(self._tokens, found.name, found.tokens, found.tpm, now_us)

    async def adjust_tokens(
        self, key_id: str, delta_tokens: int, now: float, team_id: str | None = None
    ) -> None:
        if delta_tokens == 0:
            return
        for name in (key_id, None if team_id is None else team_bucket(team_id)):
            bucket = None if name is None else self._tokens.get(name)
            if name is None or bucket is None:
                continue
            now_us = to_us(now)
            level = refill(bucket.level, bucket.stamp, bucket.capacity, now_us)
            level = min(level - delta_tokens * PERIOD_US, bucket.capacity * PERIOD_US)
            self._store(self._tokens, name, level, bucket.capacity, now_us)

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


def tighter(key: LimitDecision, team: LimitDecision) -> LimitDecision:
    """One decision from the key's and its team's: per dimension the bucket with less left (the one
    that binds), the longest wait, and which of the two refused."""
    requests = team if _binds(team.remaining_requests, key.remaining_requests) else key
    tokens = team if _binds(team.remaining_tokens, key.remaining_tokens) else key
    retry = None
    refused_by = None
    if not key.allowed:
        waits = [wait for wait in (key.retry_after_s, team.retry_after_s) if wait is not None]
        retry = max(waits) if waits else None
        key_waits = key.retry_after_s is not None and key.retry_after_s > 0
        refused_by = "key" if key_waits else "team"
    return LimitDecision(
        allowed=key.allowed,
        limit_requests=requests.limit_requests,
        remaining_requests=requests.remaining_requests,
        reset_requests_s=requests.reset_requests_s,
        limit_tokens=tokens.limit_tokens,
        remaining_tokens=tokens.remaining_tokens,
        reset_tokens_s=tokens.reset_tokens_s,
        retry_after_s=retry,
        refused_by=refused_by,
    )


def _binds(team: int | None, key: int | None) -> bool:
    return team is not None and (key is None or team < key)


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
