"""The part of the `Gateway` its endpoint mixins build on: the one unary and the one stream path.

The endpoints (`server/gateway_chat.py`, `gateway_responses.py`, `gateway_embeddings.py`,
`gateway_media.py`) are mixins of `Gateway` (`server/gateway.py`), which sets the attributes and
overrides the methods declared here; declaring them lets the mixins call them without importing the
gateway back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from server.accounts.keys import KeyRecord
from server.accounts.metering import Consumption, Demand
from server.accounts.sqlite_store import SqliteStore
from server.background_responses import BackgroundResponses
from server.providers.base import Provider, RequestContext
from server.response_cache.stage import Form
from server.routing.catalogue import CatalogueEntry
from server.routing.route import Route
from server.stored_responses import ResponseState
from server.stream_items import Result, StreamItems
from siraya.router.v1 import common_pb2


class Pipeline:
    providers: dict[str, Provider]
    store: SqliteStore
    state: ResponseState | None
    background: BackgroundResponses | None

    def _entry(self, model: str, kind: str, key: KeyRecord) -> CatalogueEntry:
        """The entry `key` may call `model` as (`Gateway.model_for`)."""
        raise NotImplementedError

    def _unary(
        self,
        kind: str,
        model: str,
        routing: common_pb2.Routing,
        demand: Demand,
        key: KeyRecord,
        ctx: RequestContext,
        call: Callable[[Route], Awaitable[Result]],
        consumed: Callable[[Result, Demand], Consumption],
        form: Form[Result] | None = None,
    ) -> Awaitable[tuple[Result, Route, float | None]]:
        """Admit, dispatch and settle one unary request: (result, the route that served it, cost)."""
        raise NotImplementedError

    def _stream(
        self,
        kind: str,
        model: str,
        routing: common_pb2.Routing,
        demand: Demand,
        key: KeyRecord,
        ctx: RequestContext,
        call: Callable[[Route], AsyncIterator[Result]],
        items: StreamItems[Result],
        show_usage: bool = True,
    ) -> AsyncIterator[Result]:
        """Admit, dispatch and settle one stream; `items` says how to read and mark its items."""
        raise NotImplementedError
