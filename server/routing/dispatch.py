"""Run one request against the deployments that can serve it.

`Dispatcher` is the single place where a call meets a provider: selection, fallbacks, retries,
circuit breakers, timeouts and hedging all live behind `unary` and `stream`. The gateway hands it
a catalogue entry and a function that calls one route; it gets back the result and the route that
produced it. Only the returned route is billed: a hedge that lost, or an attempt that failed,
is never part of the result.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from typing import Any, TypeVar

from google.protobuf.message import Message

from server.config import GatewayConfig, HedgingConfig
from server.errors import GatewayError, NoAvailableProvider, RequestTimeout
from server.providers.base import Provider, RequestContext
from server.routing.affinity import PromptAffinity, prompt_prefix
from server.routing.attempts import Attempts, DispatchCounters, timeout_error
from server.routing.breaker import BreakerBoard, InProcessBreakers, RedisBreakers
from server.routing.catalogue import Catalogue, CatalogueEntry
from server.routing.events import DispatchEvents, MetricsEvents, NoEvents
from server.routing.route import Route
from server.routing.router import candidates
from server.routing.selection import why_none
from server.routing.stats import LatencyStats
from server.routing.timeouts import bound, earliest, next_within
from siraya.router.v1 import common_pb2

__all__ = ["DispatchCounters", "Dispatcher", "build_dispatcher"]

Result = TypeVar("Result")
X = TypeVar("X")
_EMPTY: Any = object()


class Dispatcher:
    """Routes requests; `counters`, `breakers` and `stats` are what operations metrics read."""

    def __init__(
        self,
        providers: dict[str, Provider],
        catalogue: Catalogue | None = None,
        *,
        breakers: BreakerBoard | None = None,
        stats: LatencyStats | None = None,
        events: DispatchEvents | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        affinity: PromptAffinity | None = None,
    ) -> None:
        self.providers = providers
        self.catalogue = catalogue
        self.affinity = affinity if affinity is not None else PromptAffinity(clock=clock)
        # Only a gateway with a model that opts in pays for hashing prompt prefixes.
        self._sticky = catalogue is None or any(
            e.prompt_cache_affinity_ttl is not None for e in catalogue.entries()
        )
        self.breakers: BreakerBoard = breakers if breakers is not None else InProcessBreakers()
        self.stats = stats or LatencyStats()
        self.counters = DispatchCounters()
        self.events: DispatchEvents = events or NoEvents()
        self.breakers.on_change = self.events.breaker
        self._provider_names = frozenset(providers)
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def close(self) -> None:
        await self.breakers.close()

    def routes(
        self,
        entry: CatalogueEntry,
        routing: common_pb2.Routing,
        params: Message | None = None,
        prefix: bytes | None = None,
    ) -> list[Route]:
        """Every route of `entry` that may serve the request, in the order they would be tried.

        With the request's prompt `prefix` (`_prefix`) and a model that keeps prompt-cache
        affinity, the deployment that served that prefix last goes first.
        """
        deployments = candidates(
            entry, routing, self._provider_names, params=params, stats=self.stats, rng=self._rng
        )
        if prefix is not None and entry.prompt_cache_affinity_ttl is not None:
            deployments = self.affinity.order(entry.id, prefix, deployments)
        return [Route(entry, deployment, self.providers[deployment.provider]) for deployment in deployments]

    def plan(
        self,
        entry: CatalogueEntry,
        routing: common_pb2.Routing,
        resolve: Callable[[str], CatalogueEntry] | None = None,
        params: Message | None = None,
        prefix: bytes | None = None,
    ) -> list[Route]:
        """The routes of `entry`, then of each fallback model in `routing.models`, in try order.

        `resolve` turns a fallback model id into its entry (the gateway checks the key's access
        there); without it the dispatcher's catalogue resolves it.
        """
        plan = self.routes(entry, routing, params, prefix)
        seen = {entry.id: entry}
        for model_id in routing.models:
            fallback = self._resolve(model_id, entry, resolve)
            if fallback.id in seen:
                continue
            seen[fallback.id] = fallback
            plan.extend(self.routes(fallback, routing, params, prefix))
        if not plan:
            why = {
                model.id: why_none(model.deployments, routing.provider, self._provider_names, params)
                for model in seen.values()
            }
            reasons = why[entry.id] if len(why) == 1 else "; ".join(f"{m}: {r}" for m, r in why.items())
            names = ", ".join(seen)
            raise NoAvailableProvider(
                f"No provider for model '{names}' meets the routing requirements: {reasons}."
            )
        return plan

    def _resolve(
        self, model_id: str, entry: CatalogueEntry, resolve: Callable[[str], CatalogueEntry] | None
    ) -> CatalogueEntry:
        if resolve is not None:
            return resolve(model_id)
        if self.catalogue is None:
            raise NoAvailableProvider("Fallback models are not available on this gateway.")
        if entry.kind == "any":
            return self.catalogue.get(model_id)
        return self.catalogue.resolve(model_id, entry.kind)

    def _attempts(
        self,
        entry: CatalogueEntry,
        routing: common_pb2.Routing,
        ctx: RequestContext,
        resolve: Callable[[str], CatalogueEntry] | None,
        params: Message | None,
        prefix: bytes | None,
    ) -> Attempts:
        self.counters.requests += 1
        return Attempts(
            entry.id,
            self.plan(entry, routing, resolve, params, prefix),
            ctx.deadline,
            breakers=self.breakers,
            stats=self.stats,
            counters=self.counters,
            events=self.events,
            clock=self._clock,
            sleep=self._sleep,
            rng=self._rng,
            caller_timeouts=ctx.first_token_timeout is not None,
        )

    # unary

    async def unary(
        self,
        entry: CatalogueEntry,
        routing: common_pb2.Routing,
        ctx: RequestContext,
        call: Callable[[Route], Awaitable[Result]],
        *,
        resolve: Callable[[str], CatalogueEntry] | None = None,
        params: Message | None = None,
    ) -> tuple[Result, Route]:
        prefix = self._prefix(routing, params)
        attempts = self._attempts(entry, routing, ctx, resolve, params, prefix)

        async def start(route: Route) -> Result:
            limit = bound(route.entry.resilience.timeouts.total, ctx.deadline, self._clock())
            if limit is None:
                return await call(route)
            try:
                async with asyncio.timeout(limit):
                    return await call(route)
            except TimeoutError:
                raise timeout_error(route, "reply", limit) from None

        result, route = await self._first_success(attempts, start, _discard_nothing)
        if prefix is not None:
            self._remember(prefix, route)
        return result, route

    def _prefix(self, routing: common_pb2.Routing, params: Message | None) -> bytes | None:
        """The request's prompt prefix, when affinity may apply: a model opts in somewhere and the
        caller chose no order of their own (`provider.order` or `provider.sort` win, and a request
        routed by them is not remembered)."""
        if not self._sticky:
            return None
        preferences = routing.provider
        if preferences.order or preferences.HasField("sort"):
            return None
        return prompt_prefix(params)

    def _remember(self, prefix: bytes, route: Route) -> None:
        ttl = route.entry.prompt_cache_affinity_ttl
        if ttl is not None:
            self.affinity.remember(route.entry.id, prefix, route.deployment.key, ttl)

    # streams

    async def stream(
        self,
        entry: CatalogueEntry,
        routing: common_pb2.Routing,
        ctx: RequestContext,
        call: Callable[[Route], AsyncIterator[Result]],
        *,
        resolve: Callable[[str], CatalogueEntry] | None = None,
        params: Message | None = None,
    ) -> AsyncIterator[tuple[Result, Route]]:
        """Items of the first route that produces one. Failures before the first item fail over
        unseen; after it nothing is retried, and the error reaches the caller."""
        prefix = self._prefix(routing, params)
        attempts = self._attempts(entry, routing, ctx, resolve, params, prefix)
        ends: dict[int, float | None] = {}

        async def start(route: Route) -> tuple[AsyncIterator[Result], Result]:
            timeouts = route.entry.resilience.timeouts
            now = self._clock()
            end = earliest(now + timeouts.total if timeouts.total is not None else None, ctx.deadline)
            ends[id(route)] = end
            first_token = (
                ctx.first_token_timeout if ctx.first_token_timeout is not None else timeouts.first_token
            )
            limit = bound(first_token, end, now)
            items = call(route)
            try:
                first = await next_within(items, limit)
            except StopAsyncIteration:
                return items, _EMPTY
            except TimeoutError:
                await _close(items)
                raise timeout_error(route, "first token", limit) from None
            except BaseException:
                await _close(items)
                raise
            return items, first

        (items, first), route = await self._first_success(attempts, start, _discard_stream)
        if first is _EMPTY:
            return
        if prefix is not None:
            self._remember(prefix, route)
        idle = ctx.idle_timeout if ctx.idle_timeout is not None else route.entry.resilience.timeouts.idle
        end = ends.get(id(route))
        count, first_at = 1, self._clock()
        try:
            yield first, route
            if idle is None and end is None:
                # Nothing to time: relay each item with no wrapper of our own around the wait.
                async for item in items:
                    count += 1
                    yield item, route
            else:
                while True:
                    limit = bound(idle, end, self._clock())
                    try:
                        item = await next_within(items, limit)
                    except StopAsyncIteration:
                        break
                    except TimeoutError:
                        raise RequestTimeout(
                            f"Provider '{route.deployment.provider}' stalled mid-stream for {limit:g}s."
                        ) from None
                    count += 1
                    yield item, route
        except GatewayError as error:
            # A stall past the caller's own idle limit is not held against the deployment.
            if not (isinstance(error, RequestTimeout) and ctx.idle_timeout is not None):
                self.stats.observe_failure(route.deployment.key)
                await self.breakers.record(route.deployment.key, False, route.entry.resilience.breaker)
            raise
        finally:
            await _close(items)
        elapsed = self._clock() - first_at
        if count > 1 and elapsed > 0:
            self.stats.observe_throughput(route.deployment.key, (count - 1) / elapsed)

    # the attempt loop, with hedging when the model opts in

    async def _first_success(
        self,
        attempts: Attempts,
        start: Callable[[Route], Awaitable[X]],
        discard: Callable[[X], Awaitable[None]],
    ) -> tuple[X, Route]:
        while (route := await attempts.next()) is not None:
            hedging = route.entry.resilience.hedging
            if hedging.enabled:
                won = await self._race(attempts, route, start, discard, hedging)
                if won is not None:
                    return won
                continue
            started = self._clock()
            try:
                value = await start(route)
            except GatewayError as error:
                await attempts.failed(route, error)
                continue
            await attempts.succeeded(route, self._clock() - started)
            return value, route
        raise attempts.error()

    async def _race(
        self,
        attempts: Attempts,
        route: Route,
        start: Callable[[Route], Awaitable[X]],
        discard: Callable[[X], Awaitable[None]],
        hedging: HedgingConfig,
    ) -> tuple[X, Route] | None:
        """Run `route`; if it has not answered after `hedging.delay`, race the next route against it.

        The first success wins and the others are cancelled; None when every racer failed.
        """
        running: dict[asyncio.Task[X], tuple[Route, float]] = {}

        def launch(target: Route) -> None:
            running[asyncio.ensure_future(start(target))] = (target, self._clock())

        launch(route)
        hedges = 0
        try:
            while running:
                wait = hedging.delay if hedges < hedging.max_hedges else None
                done, _ = await asyncio.wait(running, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    target = await attempts.next_hedge()
                    if target is None:
                        hedges = hedging.max_hedges
                    else:
                        hedges += 1
                        self.counters.hedges += 1
                        self.events.hedge(target.deployment)
                        launch(target)
                    continue
                for task in done:
                    racer, started = running.pop(task)
                    error = task.exception()
                    if error is None:
                        await attempts.succeeded(racer, self._clock() - started)
                        return task.result(), racer
                    if not isinstance(error, GatewayError):
                        raise error
                    await attempts.failed(racer, error, retry=False)
            return None
        finally:
            for task in running:
                task.cancel()
            for task in running:
                with suppress(BaseException):
                    value = await task
                    await discard(value)


async def _close(items: AsyncIterator[Any]) -> None:
    aclose = getattr(items, "aclose", None)
    if aclose is not None:
        await aclose()


async def _discard_nothing(_: object) -> None:
    return None


async def _discard_stream(opened: tuple[AsyncIterator[Any], Any]) -> None:
    await _close(opened[0])


def build_dispatcher(
    config: GatewayConfig, providers: dict[str, Provider], catalogue: Catalogue
) -> Dispatcher:
    """The gateway's Dispatcher: breakers in Redis when `routing.redis_url` (or else
    `accounts.redis_url`) is set, so that every replica shares them; in-process otherwise."""
    redis_url = config.routing.redis_url or config.accounts.redis_url
    breakers: BreakerBoard = RedisBreakers.from_url(redis_url) if redis_url else InProcessBreakers()
    affinity = PromptAffinity(config.routing.prompt_cache_affinity_entries)
    return Dispatcher(providers, catalogue, breakers=breakers, events=MetricsEvents(), affinity=affinity)
