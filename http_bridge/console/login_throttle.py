"""How many failed console sign-ins an address may make: `ui.login_failures_per_minute` (10 by
default) in any sliding minute, then a 429 with Retry-After until the oldest of them is a minute old.

Keys are long random secrets, so guessing one is hopeless anyway; the limit keeps a guesser (or a
script stuck in a loop) from costing the key store a lookup per attempt. Only failures count: a
form that expired or a sign-in that succeeds does not. The count is this process's: with several
workers or replicas an address gets the limit at each of them.

Memory stays bounded: at most MAX_ADDRESSES addresses are tracked, and when a new one would pass
that, the addresses whose failures have all aged out go first, then the longest-tracked.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["MAX_ADDRESSES", "WINDOW_SECONDS", "LoginThrottle"]

WINDOW_SECONDS = 60.0
MAX_ADDRESSES = 10_000


class LoginThrottle:
    """Failed sign-ins per client address over the last WINDOW_SECONDS."""

    def __init__(
        self,
        failures_per_minute: int = 10,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        self.limit = failures_per_minute
        self._clock = clock
        self._max_addresses = max_addresses
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, address: str, now: float) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        while failures and failures[0] <= now - WINDOW_SECONDS:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures

    def retry_after(self, address: str) -> float | None:
        """Seconds until `address` may try again, or None when it may now."""
        now = self._clock()
        failures = self._recent(address, now)
        if failures is None or len(failures) < self.limit:
            return None
        return failures[-self.limit] + WINDOW_SECONDS - now

    def failed(self, address: str) -> None:
        now = self._clock()
        failures = self._recent(address, now)
        if failures is None:
            if len(self._failures) >= self._max_addresses:
                self._make_room(now)
            failures = self._failures[address] = deque()
        failures.append(now)
        # Only the last `limit` failures decide anything: older ones need not be kept.
        while len(failures) > self.limit:
            failures.popleft()

    def _make_room(self, now: float) -> None:
        for address in list(self._failures):
            self._recent(address, now)
        while len(self._failures) >= self._max_addresses:
            del self._failures[next(iter(self._failures))]
