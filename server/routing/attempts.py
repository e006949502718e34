"""The sequence of attempts for one request: which route next, retries with backoff, breaker
skips, the request deadline, and the error it ends with when nothing succeeded."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from server.errors import GatewayError, RequestTimeout
from server.routing.breaker import BreakerBoard
from server.routing.events import DispatchEvents
from server.routing.outcomes import final_error
from server.routing.retry import backoff_delay, counts_against_deployment, is_retryable, may_fail_over
from server.routing.stats import LatencyStats

if TYPE_CHECKING:
    from server.routing.route import Route


@dataclass(slots=True)
class DispatchCounters:
    """Running totals since start, for operations metrics."""

    requests: int = 0
    # Upstream calls started, first tries, retries and hedges included.
    attempts: int = 0
    retries: int = 0
    # Moves to another deployment (or fallback model) after a failure.
    fallbacks: int = 0
    hedges: int = 0
    # Deployments passed over because their circuit was open.
    breaker_skips: int = 0
    # Requests that ended in an error after every candidate was tried.
    exhausted: int = 0


class Attempts:
    """One request's walk through its routes. Not shared between requests."""

    __slots__ = (
        "_breakers",
        "_caller_timeouts",
        "_clock",
        "_counters",
        "_deadline",
        "_delay",
        "_events",
        "_failures",
        "_index",
        "_model",
        "_rng",
        "_routes",
        "_skipped",
        "_sleep",
        "_stats",
        "_tries",
        "deadline_passed",
    )

    def __init__(
        self,
        model: str,
        routes: list[Route],
        deadline: float | None,
        *,
        breakers: BreakerBoard,
        stats: LatencyStats,
        counters: DispatchCounters,
        events: DispatchEvents,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        rng: random.Random,
        caller_timeouts: bool = False,
    ) -> None:
        self._model = model
        self._routes = routes
        self._deadline = deadline
        self._breakers = breakers
        self._stats = stats
        self._counters = counters
        self._events = events
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        # Whether the caller set its own first-token limit: a timeout then says little about the
        # deployment, and one impatient client must not open a breaker that every caller shares.
        self._caller_timeouts = caller_timeouts
        self._index = -1
        self._tries = 0
        self._delay: float | None = None
        self._failures: list[tuple[Route, GatewayError]] = []
        self._skipped: list[Route] = []
        self.deadline_passed = False

    @property
    def tried(self) -> int:
        return len(self._failures)

    async def next(self) -> Route | None:
        """The route of the next attempt (after any backoff), or None when there is none left."""
        delay, self._delay = self._delay, None
        if delay is not None and self._fits(delay):
            if delay > 0:
                await self._sleep(delay)
            self._tries += 1
            self._counters.retries += 1
            self._counters.attempts += 1
            again = self._routes[self._index]
            self._events.retry(again.deployment)
            return again
        route = await self._advance()
        if route is not None and self._failures:
            self._counters.fallbacks += 1
            self._events.fallback(self._failures[-1][0].deployment, route.deployment)
        return route

    async def next_hedge(self) -> Route | None:
        """A further route to race against the running one (no backoff; retries are not hedged)."""
        self._delay = None
        return await self._advance()

    async def _advance(self) -> Route | None:
        while True:
            if self._deadline is not None and self._clock() >= self._deadline:
                self.deadline_passed = True
                return None
            self._index += 1
            if self._index >= len(self._routes):
                return None
            route = self._routes[self._index]
            deployment = route.deployment
            if not await self._breakers.allow(deployment.key, route.entry.resilience.breaker):
                self._skipped.append(route)
                self._counters.breaker_skips += 1
                continue
            self._tries = 1
            self._counters.attempts += 1
            return route

    def _past_deadline(self) -> bool:
        return self._deadline is not None and self._clock() >= self._deadline

    def _fits(self, delay: float) -> bool:
        return self._deadline is None or self._clock() + delay < self._deadline

    async def failed(self, route: Route, error: GatewayError, *, retry: bool = True) -> None:
        """Count a failed attempt; raise `error` itself when no other deployment could do better."""
        policy = route.entry.resilience
        # A timeout because the caller's own deadline ran out says nothing about the deployment.
        impatient = isinstance(error, RequestTimeout) and (self._caller_timeouts or self._past_deadline())
        if counts_against_deployment(error) and not impatient:
            self._stats.observe_failure(route.deployment.key)
            await self._breakers.record(route.deployment.key, False, policy.breaker)
        if not may_fail_over(error):
            raise error
        self._failures.append((route, error))
        if retry and route is self._routes[self._index] and is_retryable(error):
            if self._tries < policy.retry.max_attempts:
                self._delay = backoff_delay(policy.retry, self._tries, error.retry_after, self._rng)

    async def succeeded(self, route: Route, latency: float) -> None:
        await self._breakers.record(route.deployment.key, True, route.entry.resilience.breaker)
        self._stats.observe_latency(route.deployment.key, latency)

    def error(self) -> GatewayError:
        self._counters.exhausted += 1
        if self._deadline is not None and self._clock() >= self._deadline:
            self.deadline_passed = True
        return final_error(
            self._model,
            [(route.deployment, error) for route, error in self._failures],
            [route.deployment for route in self._skipped],
            self.deadline_passed,
        )


def timeout_error(route: Route, what: str, seconds: float | None) -> RequestTimeout:
    limit = f" within {seconds:g}s" if seconds is not None else ""
    return RequestTimeout(f"Provider '{route.deployment.provider}' sent no {what}{limit}.")
