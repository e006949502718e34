"""Rate limits shared by every replica: the token buckets of memory_limits.py, in Redis.

Each hit is one EVALSHA round trip: the script reads both buckets, decides, and writes them back
atomically (Redis runs one script at a time), so limits hold across any number of replicas. The
script is registered once per store; redis-py sends EVALSHA and falls back to EVAL only after a
NOSCRIPT (a restarted or failed-over Redis).

One hash per key (`{prefix}{key_id}`): rl/rt/rc are the requests bucket's level, stamp and capacity,
tl/tt/tc the tokens bucket's. A single key keeps the script valid on Redis Cluster. The hash
expires once both buckets would be full again, so idle keys cost nothing. A key whose team has
limits keeps its hash under the team's hash tag instead (`{prefix}{{team:T}}:{key_id}`, beside the
team's `{prefix}{{team:T}}`), so that one script checks and takes from both, still on one slot.

The time is the caller's `now`, not Redis TIME, so that the contract tests can drive the clock;
replicas' clocks must be NTP-synchronised (a skew of d seconds shifts refills by at most d).
Values cross into Lua as integer strings: Lua numbers are doubles, exact below 2**53, which is why
capacities are clamped to MAX_CAPACITY.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from server.accounts.memory_limits import PERIOD_US, clamp_capacity, decision, team_bucket, tighter, to_us
from server.accounts.store import UNLIMITED, LimitDecision, TeamRates

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

# KEYS: the key's hash, then its team's when the team has limits.
# ARGV: now_us, period_us, rpm, tpm (0: unlimited), estimated tokens, team rpm, team tpm.
# Returns {allowed, requests level, requests wait, tokens level, tokens wait}, then the same four of
# the team's buckets when there is a team.
_HIT = (
    _PRELUDE
    + """
local cost = tonumber(ARGV[5])
local function load(k, rpm, tpm)
  local s = redis.call('HMGET', k, 'rl', 'rt', 'tl', 'tt')
  local b = {s, 0, 0, 0, 0}
  if rpm > 0 then
    b[2] = refill(s[1], s[2], rpm)
    b[3] = wait(b[2], period, rpm)
  end
  if tpm > 0 then
    b[4] = refill(s[3], s[4], tpm)
    b[5] = wait(b[4], math.min(cost, tpm) * period, tpm)
  end
  return b
end
local function save(k, b, rpm, tpm, allowed)
  local s = b[1]
  local ttl = 0
  if rpm > 0 then
    if allowed == 1 then b[2] = b[2] - period end
    redis.call('HSET', k, 'rl', fmt(b[2]), 'rt', stamp(s[2]), 'rc', fmt(rpm))
    ttl = math.max(ttl, wait(b[2], rpm * period, rpm))
  end
  if tpm > 0 then
    if allowed == 1 then b[4] = b[4] - cost * period end
    redis.call('HSET', k, 'tl', fmt(b[4]), 'tt', stamp(s[4]), 'tc', fmt(tpm))
    ttl = math.max(ttl, wait(b[4], tpm * period, tpm))
  end
  if rpm > 0 or tpm > 0 then redis.call('PEXPIRE', k, ceil_div(ttl, 1000) + 1000) end
end
local rpm, tpm = tonumber(ARGV[3]), tonumber(ARGV[4])
local mine = load(KEYS[1], rpm, tpm)
local theirs = nil
local team_rpm, team_tpm = tonumber(ARGV[6]), tonumber(ARGV[7])
if #KEYS > 1 then theirs = load(KEYS[2], team_rpm, team_tpm) end
local allowed = 0
if mine[3] == 0 and mine[5] == 0 and (theirs == nil or (theirs[3] == 0 and theirs[5] == 0)) then
  allowed = 1
end
save(KEYS[1], mine, rpm, tpm, allowed)
if theirs == nil then return {allowed, mine[2], mine[3], mine[4], mine[5]} end
save(KEYS[2], theirs, team_rpm, team_tpm, allowed)
return {allowed, mine[2], mine[3], mine[4], mine[5], theirs[2], theirs[3], theirs[4], theirs[5]}
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

    def _names(self, key_id: str, team_id: str | None) -> list[str]:
        """The hashes of a hit: the key's alone, or the key's and its team's under one hash tag (the
        team's), so that one script may touch both on Redis Cluster."""
        if team_id is None:
            return [self._prefix + key_id]
        team = f"{self._prefix}{{{team_bucket(team_id)}}}"
        return [f"{team}:{key_id}", team]

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
        args: list[Any] = [
            to_us(now),
            PERIOD_US,
            rpm or 0,
            tpm or 0,
            max(0, estimated_tokens),
            team_rpm or 0,
            team_tpm or 0,
        ]
        names = self._names(key_id, None if team is None else team.id)
        reply = [int(value) for value in await self._hit(keys=names, args=args)]
        allowed = bool(reply[0])
        mine = decision(allowed, rpm, reply[1], reply[2], tpm, reply[3], reply[4])
        if team is None:
            return mine
        return tighter(mine, decision(allowed, team_rpm, reply[5], reply[6], team_tpm, reply[7], reply[8]))

    async def adjust_tokens(
        self, key_id: str, delta_tokens: int, now: float, team_id: str | None = None
    ) -> None:
        if delta_tokens == 0:
            return
        for name in self._names(key_id, team_id):
            await self._adjust(keys=[name], args=[to_us(now), PERIOD_US, delta_tokens])

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()
