"""Rate limits shared by every replica: the token buckets of memory_limits.py, in Redis.

Each hit is one EVALSHA round trip: the script reads both buckets, decides, and writes them back
atomically (Redis runs one script at a time), so limits hold across any number of replicas. The
script is registered once per store; redis-py sends EVALSHA and falls back to EVAL only after a
NOSCRIPT (a restarted or failed-over Redis).

One hash per key (`{prefix}{key_id}`): rl/rt/rc are the requests bucket's level, stamp and capacity,
tl/tt/tc the tokens bucket's. A single key keeps the script valid on Redis Cluster. The hash
expires once both buckets would be full again, so idle keys cost nothing.

The time is the caller's `now`, not Redis TIME, so that the contract tests can drive the clock;
replicas' clocks must be NTP-synchronised (a skew of d seconds shifts refills by at most d).
Values cross into Lua as integer strings: Lua numbers are doubles, exact below 2**53, which is why
capacities are clamped to MAX_CAPACITY.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from server.accounts.memory_limits import PERIOD_US, clamp_capacity, decision, to_us
from server.accounts.store import UNLIMITED, LimitDecision

__all__ = ["RedisLimitStore"]

_PRELUDE = """
local period = tonumber(ARGV[2])
local now = tonumber(ARGV[1])
local function fmt(x) return string.format('%.0f', x) end
local function floor_div(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 end
  if (q + 1) * b <= a then q = q + 1 end
  return q
end
local function ceil_div(a, b) return -floor_div(-a, b) end
local function refill(level, stamp, cap)
  local full = cap * period
  if not level then return full end
  level = math.min(tonumber(level), full)
  local elapsed = now - tonumber(stamp)
  if elapsed <= 0 then return level end
  if elapsed >= ceil_div(full - level, cap) then return full end
  return level + elapsed * cap
end
local function wait(level, needed, cap)
  if level >= needed then return 0 end
  return ceil_div(needed - level, cap)
end
local function stamp(old)
  if old and tonumber(old) > now then return old end
  return fmt(now)
end
"""

# ARGV: now_us, period_us, rpm (0: unlimited), tpm (0: unlimited), estimated tokens.
# Returns {allowed, requests level, requests wait, tokens level, tokens wait}.
_HIT = (
    _PRELUDE
    + """
local rpm = tonumber(ARGV[3])
local tpm = tonumber(ARGV[4])
local cost = tonumber(ARGV[5])
local s = redis.call('HMGET', KEYS[1], 'rl', 'rt', 'tl', 'tt')
local rl, rw, tl, tw = 0, 0, 0, 0
if rpm > 0 then
  rl = refill(s[1], s[2], rpm)
  rw = wait(rl, period, rpm)
end
if tpm > 0 then
  tl = refill(s[3], s[4], tpm)
  tw = wait(tl, math.min(cost, tpm) * period, tpm)
end
local allowed = 0
if rw == 0 and tw == 0 then
  allowed = 1
  if rpm > 0 then rl = rl - period end
  if tpm > 0 then tl = tl - cost * period end
end
local ttl = 0
if rpm > 0 then
  redis.call('HSET', KEYS[1], 'rl', fmt(rl), 'rt', stamp(s[2]), 'rc', fmt(rpm))
  ttl = math.max(ttl, wait(rl, rpm * period, rpm))
end
if tpm > 0 then
  redis.call('HSET', KEYS[1], 'tl', fmt(tl), 'tt', stamp(s[4]), 'tc', fmt(tpm))
  ttl = math.max(ttl, wait(tl, tpm * period, tpm))
end
redis.call('PEXPIRE', KEYS[1], ceil_div(ttl, 1000) + 1000)
return {allowed, rl, rw, tl, tw}
"""
)

# ARGV: now_us, period_us, delta tokens (actual minus estimated).
_ADJUST = (
    _PRELUDE
    + """
local delta = tonumber(ARGV[3])
local s = redis.call('HMGET', KEYS[1], 'tl', 'tt', 'tc')
if not s[1] or not s[3] then return 0 end
local cap = tonumber(s[3])
local level = math.min(refill(s[1], s[2], cap) - delta * period, cap * period)
redis.call('HSET', KEYS[1], 'tl', fmt(level), 'tt', stamp(s[2]))
local ttl = ceil_div(wait(level, cap * period, cap), 1000) + 1000
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""
)


class RedisLimitStore:
    """Per-key token buckets in Redis, one atomic script call per hit."""

    def __init__(
        self, client: Redis, prefix: str = "siraya:ratelimit:", *, owns_client: bool = False
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._owns_client = owns_client
        self._hit = client.register_script(_HIT)
        self._adjust = client.register_script(_ADJUST)

    @classmethod
    def from_url(cls, url: str, prefix: str = "siraya:ratelimit:") -> RedisLimitStore:
        """A store with its own connection pool, closed by `close`."""
        return cls(Redis.from_url(url), prefix, owns_client=True)

    async def hit(
        self, key_id: str, rpm: int | None, tpm: int | None, estimated_tokens: int, now: float
    ) -> LimitDecision:
        rpm, tpm = clamp_capacity(rpm), clamp_capacity(tpm)
        if rpm is None and tpm is None:
            return UNLIMITED
        args: list[Any] = [to_us(now), PERIOD_US, rpm or 0, tpm or 0, max(0, estimated_tokens)]
        reply = await self._hit(keys=[self._prefix + key_id], args=args)
        allowed, request_level, request_wait, token_level, token_wait = (int(value) for value in reply)
        return decision(bool(allowed), rpm, request_level, request_wait, tpm, token_level, token_wait)

    async def adjust_tokens(self, key_id: str, delta_tokens: int, now: float) -> None:
        if delta_tokens == 0:
            return
        await self._adjust(keys=[self._prefix + key_id], args=[to_us(now), PERIOD_US, delta_tokens])

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()
