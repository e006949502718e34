"""Budgets for the media the gateway fetches or decodes for a request (issue #20, defect 2).

Client media that an upstream needs inline (Gemini) lives in the gateway's memory from its fetch
until the upstream request carrying it has been sent, about 2.4 times over (raw and base64). It is
bounded per request and per process:

- per request: how many media parts, and their total bytes (a 400 naming the part that crossed it);
- per process: the bytes all requests' media may hold at once, and the fetches on the wire.

A request reserves its worst case (each part's cap, at most the per-request total) from the process
budget before it fetches anything, all or nothing, waiting in line when the budget is spent. After
fetching it gives back what its media did not use, and the rest once its upstream request is sent.
Because a request never holds bytes while waiting for more, requests cannot deadlock each other; and
a fetch waits for a slot only once its request holds its bytes, so slots always come free.
"""

from __future__ import annotations

import asyncio
import collections
import functools
from dataclasses import dataclass

from server.errors import InvalidRequest, NoAvailableProvider

__all__ = ["BUSY_CODE", "Budget", "MediaLease", "MediaLimits", "ProcessMediaBudget", "process_budget"]

_MIB = 1024 * 1024
BUSY_CODE = "media_budget_busy"


@dataclass(frozen=True, slots=True)
class MediaLimits:
    """The media budgets (`limits.media_*` in the config); the per-URL cap is `MediaPolicy.max_bytes`."""

    urls_per_request: int = 32
    bytes_per_request: int = 32 * _MIB
    bytes_in_flight: int = 64 * _MIB
    fetches_in_flight: int = 16


class Budget:
    """A counted resource handed out first come, first served, all of an amount or none of it.

    Strict FIFO: a large amount at the head is not overtaken by small ones behind it, so it cannot
    starve. Waiters are futures of the running loop (no loop is bound at construction).
    """

    __slots__ = ("capacity", "available", "_waiters")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.available = capacity
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    async def acquire(self, amount: int, timeout: float | None) -> None:
        """Take `amount`; TimeoutError if it did not come free within `timeout` seconds."""
        if amount > self.capacity:
            raise ValueError(f"{amount} is more than the whole budget ({self.capacity})")
        if not self._waiters and self.available >= amount:
            self.available -= amount
            return
        waiter = (amount, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter[1]
        except BaseException:
            if waiter[1].done() and not waiter[1].cancelled():
                self.release(amount)  # granted just as the wait ended: hand it on
            else:
                was_head = self._waiters[0] is waiter
                self._waiters.remove(waiter)
                if was_head:
                    self._grant()
            raise

    def release(self, amount: int) -> None:
        self.available += amount
        self._grant()

    def _grant(self) -> None:
        while self._waiters and self._waiters[0][0] <= self.available:
            amount, future = self._waiters.popleft()
            if not future.done():
                self.available -= amount
                future.set_result(None)


class ProcessMediaBudget:
    """The process's share: media bytes held at once, and fetches on the wire."""

    __slots__ = ("bytes", "fetches")

    def __init__(self, max_bytes: int, max_fetches: int) -> None:
        self.bytes = Budget(max_bytes)
        self.fetches = Budget(max_fetches)


@functools.cache
def process_budget(max_bytes: int, max_fetches: int) -> ProcessMediaBudget:
    """The one budget of this process for these settings, shared by every provider that fetches media."""
    return ProcessMediaBudget(max_bytes, max_fetches)


def _busy(timeout: float) -> NoAvailableProvider:
    return NoAvailableProvider(
        f"The gateway is holding as much client media as it may; no room came free within {timeout:g} "
        "seconds. Retry shortly.",
        code=BUSY_CODE,
        retry_after=1.0,
    )


class MediaLease:
    """One request's reservation from the process budget, and the count of bytes its media holds."""

    __slots__ = ("_budget", "_reserved", "_limit", "used")

    def __init__(self, budget: ProcessMediaBudget, reserved: int, limit: int) -> None:
        self._budget = budget
        self._reserved = reserved
        self._limit = limit
        self.used = 0

    @classmethod
    async def reserve(
        cls, budget: ProcessMediaBudget, worst_case: int, limit: int, timeout: float
    ) -> MediaLease:
        """Wait (up to `timeout` seconds) until the request's worst case fits in the process budget."""
        amount = min(worst_case, limit, budget.bytes.capacity)
        try:
            await budget.bytes.acquire(amount, timeout)
        except TimeoutError:
            raise _busy(timeout) from None
        return cls(budget, amount, limit)

    def take(self, amount: int, param: str) -> None:
        """Count `amount` more bytes held for the part `param`; a 400 naming it past the request's limit."""
        self.used += amount
        if self.used > self._limit:
            raise InvalidRequest(
                f"The request's media is larger than the {self._limit}-byte limit per request ({param})",
                param=param,
                code="media_too_large",
            )

    def shrink(self) -> None:
        """Give back what the request reserved but its media did not use."""
        spare = self._reserved - min(self.used, self._reserved)
        if spare > 0:
            self._reserved -= spare
            self._budget.bytes.release(spare)

    def release(self) -> None:
        """Give back the whole reservation (the media was sent, or the request failed); idempotent."""
        if self._reserved:
            reserved, self._reserved = self._reserved, 0
            self._budget.bytes.release(reserved)

    async def fetch_slot(self, timeout: float) -> None:
        """Wait for one of the process's fetch slots; `fetch_done` gives it back."""
        try:
            await self._budget.fetches.acquire(1, timeout)
        except TimeoutError:
            raise _busy(timeout) from None

    def fetch_done(self) -> None:
        self._budget.fetches.release(1)
