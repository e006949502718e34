"""Circuit breakers, one per deployment: in-process by default, shared through Redis across replicas.

A circuit opens after `consecutive_failures` failures in a row, or when the failure rate over the
current `window` reaches `failure_rate` once `min_requests` were seen. While open, requests skip
the deployment; every `cooldown` seconds one request is let through as a half-open probe. The
probe's success closes the circuit, its failure keeps it open for another cooldown. Probes are
paced by time rather than counted, so a probe whose client went away never wedges the circuit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from redis.exceptions import RedisError

from server.config import BreakerConfig

__all__ = ["BreakerBoard", "InProcessBreakers", "RedisBreakers", "CLOSED", "OPEN", "HALF_OPEN"]

logger = logging.getLogger("siraya.routing")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class BreakerBoard(Protocol):
    """The breakers of every deployment, by deployment key."""

    # How many times any circuit opened (for metrics).
    opened: int
    # Called with (deployment key, new state) on each change this process sees.
    on_change: Callable[[str, str], None] | None

    async def allow(self, key: str, policy: BreakerConfig) -> bool:
        """Whether a request may go to the deployment now (closed, or this is a half-open probe)."""
        ...

    async def record(self, key: str, ok: bool, policy: BreakerConfig) -> None: ...

    async def state(self, key: str, policy: BreakerConfig) -> str: ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class _Circuit:
    open: bool = False
    consecutive: int = 0
    window_start: float = 0.0
    window_total: int = 0
    window_failures: int = 0
    next_probe: float = 0.0


def _trips(circuit: _Circuit, policy: BreakerConfig) -> bool:
    if circuit.consecutive >= policy.consecutive_failures:
        return True
    return (
        circuit.window_total >= policy.min_requests
        and circuit.window_failures >= policy.failure_rate * circuit.window_total
    )


class InProcessBreakers:
    """Breakers for one process. `clock` is injectable so tests can move time."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._circuits: dict[str, _Circuit] = {}
        self.opened = 0
        self.on_change: Callable[[str, str], None] | None = None

    async def allow(self, key: str, policy: BreakerConfig) -> bool:
        circuit = self._circuits.get(key)
        if circuit is None or not circuit.open or not policy.enabled:
            return True
        now = self._clock()
        if now < circuit.next_probe:
            return False
        circuit.next_probe = now + policy.cooldown
        _notify(self.on_change, key, HALF_OPEN)
        return True

    async def record(self, key: str, ok: bool, policy: BreakerConfig) -> None:
        if not policy.enabled:
            return
        now = self._clock()
        circuit = self._circuits.get(key)
        if circuit is None:
            circuit = self._circuits[key] = _Circuit(window_start=now)
        if now - circuit.window_start >= policy.window:
            circuit.window_start, circuit.window_total, circuit.window_failures = now, 0, 0
        circuit.window_total += 1
        if ok:
            circuit.consecutive = 0
            if circuit.open:
                circuit.open = False
                circuit.window_start, circuit.window_total, circuit.window_failures = now, 0, 0
                _notify(self.on_change, key, CLOSED)
            return
        circuit.window_failures += 1
        circuit.consecutive += 1
        if circuit.open:
            # A failed probe (or a late failure): another full cooldown.
            circuit.next_probe = now + policy.cooldown
            _notify(self.on_change, key, OPEN)
        elif _trips(circuit, policy):
            circuit.open = True
            circuit.next_probe = now + policy.cooldown
            self.opened += 1
            _notify(self.on_change, key, OPEN)

    async def state(self, key: str, policy: BreakerConfig) -> str:
        circuit = self._circuits.get(key)
        if circuit is None or not circuit.open:
            return CLOSED
        return HALF_OPEN if self._clock() >= circuit.next_probe else OPEN

    def snapshot(self) -> dict[str, str]:
        """{deployment key: state} of every deployment seen (for metrics)."""
        now = self._clock()
        return {
            key: (OPEN if now < c.next_probe else HALF_OPEN) if c.open else CLOSED
            for key, c in sorted(self._circuits.items())
        }

    async def close(self) -> None:
        return None


# KEYS[1] circuit hash; ARGV: now, cooldown. Returns 0 (skip), 1 (go) or 2 (go as the probe).
_ALLOW = """
if redis.call('HGET', KEYS[1], 'open') ~= '1' then return 1 end
local now = tonumber(ARGV[1])
if now < tonumber(redis.call('HGET', KEYS[1], 'next_probe') or '0') then return 0 end
redis.call('HSET', KEYS[1], 'next_probe', now + tonumber(ARGV[2]))
return 2
"""

# KEYS[1] circuit hash; ARGV: now, ok, consecutive_failures, failure_rate, window, min_requests,
# cooldown, ttl. Returns 1 when this outcome opened the circuit, 2 when it closed it, 3 when it
# kept an open circuit open (a failed probe), else 0.
_RECORD = """
local now, ok = tonumber(ARGV[1]), ARGV[2] == '1'
local h = redis.call('HMGET', KEYS[1], 'open', 'consecutive', 'wstart', 'wtotal', 'wfail')
local open, consecutive = h[1] == '1', tonumber(h[2] or '0')
local wstart, wtotal, wfail = tonumber(h[3] or ARGV[1]), tonumber(h[4] or '0'), tonumber(h[5] or '0')
if now - wstart >= tonumber(ARGV[5]) then wstart, wtotal, wfail = now, 0, 0 end
wtotal = wtotal + 1
local opened = 0
if ok then
  consecutive = 0
  if open then open, wstart, wtotal, wfail, opened = false, now, 0, 0, 2 end
else
  wfail, consecutive = wfail + 1, consecutive + 1
  if open then
    opened = 3
    redis.call('HSET', KEYS[1], 'next_probe', now + tonumber(ARGV[7]))
  elseif consecutive >= tonumber(ARGV[3])
      or (wtotal >= tonumber(ARGV[6]) and wfail >= tonumber(ARGV[4]) * wtotal) then
    open, opened = true, 1
    redis.call('HSET', KEYS[1], 'next_probe', now + tonumber(ARGV[7]))
  end
end
redis.call('HSET', KEYS[1], 'open', open and '1' or '0', 'consecutive', consecutive,
  'wstart', wstart, 'wtotal', wtotal, 'wfail', wfail)
redis.call('EXPIRE', KEYS[1], ARGV[8])
return opened
"""


class RedisBreakers:
    """Breakers shared by every replica through Redis hashes updated by Lua scripts.

    Times are wall-clock seconds, which replicas share. When Redis cannot be reached, requests are
    let through (a breaker must never be the outage) and the failure is logged.
    """

    def __init__(
        self, client: Any, *, prefix: str = "siraya:breaker:", clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._allow = client.register_script(_ALLOW)
        self._record = client.register_script(_RECORD)
        self.opened = 0
        self.on_change: Callable[[str, str], None] | None = None

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisBreakers:
        import redis.asyncio

        return cls(redis.asyncio.Redis.from_url(url), **kwargs)

    async def allow(self, key: str, policy: BreakerConfig) -> bool:
        if not policy.enabled:
            return True
        try:
            verdict = int(await self._allow(keys=[self._prefix + key], args=[self._clock(), policy.cooldown]))
        except (OSError, RedisError) as error:
            logger.warning("breaker store unavailable (%s); request let through", type(error).__name__)
            return True
        if verdict == 2:
            _notify(self.on_change, key, HALF_OPEN)
        return verdict > 0

    async def record(self, key: str, ok: bool, policy: BreakerConfig) -> None:
        if not policy.enabled:
            return
        ttl = int(max(policy.window, policy.cooldown) * 4) + 60
        args = [
            self._clock(),
            "1" if ok else "0",
            policy.consecutive_failures,
            policy.failure_rate,
            policy.window,
            policy.min_requests,
            policy.cooldown,
            ttl,
        ]
        try:
            change = int(await self._record(keys=[self._prefix + key], args=args))
        except (OSError, RedisError) as error:
            logger.warning("breaker store unavailable (%s); outcome not recorded", type(error).__name__)
            return
        if change == 1:
            self.opened += 1
            _notify(self.on_change, key, OPEN)
        elif change == 2:
            _notify(self.on_change, key, CLOSED)
        elif change == 3:
            _notify(self.on_change, key, OPEN)

    async def state(self, key: str, policy: BreakerConfig) -> str:
        values = await self._client.hmget(self._prefix + key, "open", "next_probe")
        if values[0] != b"1":
            return CLOSED
        return HALF_OPEN if self._clock() >= float(values[1] or 0) else OPEN

    async def close(self) -> None:
        await self._client.aclose()


def _notify(on_change: Callable[[str, str], None] | None, key: str, state: str) -> None:
    if on_change is not None:
        on_change(key, state)
